-- Payload retention (issue 17): the daily sweep finds an org's handoffs that still carry a payload,
-- oldest first. Only those rows are in the index; a scrubbed one leaves it, so the sweep reads what it
-- will scrub and no more, however many handoffs the org keeps.
CREATE INDEX handoffs_payload_retention ON handoffs (org_id, created_at) WHERE payload_sealed IS NOT NULL;
