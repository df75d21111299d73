-- When an agent last used its device token, for the console's device list; written at most once a
-- minute per device, so a busy agent does not turn every request into a write.
ALTER TABLE devices ADD COLUMN last_used_at TIMESTAMP;
