-- Indexes that fit the hot queries (issue 12), checked by store/sqlstore's plan test.
--
-- Lists: one index per filter shape, each in the list's own order (newest first, id breaking ties), so
-- a page reads its rows and no more whatever the org's size. The (org_id, status, created_at) index
-- gains id for the tie order.
CREATE INDEX handoffs_org_created ON handoffs (org_id, created_at DESC, id DESC);
CREATE INDEX handoffs_org_device ON handoffs (org_id, device_id, created_at DESC, id DESC);
CREATE INDEX handoffs_org_status_created ON handoffs (org_id, status, created_at DESC, id DESC);
DROP INDEX handoffs_org_status;

-- The person behind an address in any org (a team chat tap, the number an SMS reply came from):
-- user_contacts_address starts with org_id, which such a lookup does not know.
CREATE INDEX user_contacts_kind_address ON user_contacts (kind, address);

-- A person's open tokens on one channel: most tokens are never used (someone else decided), so the
-- lookup ranges over expires_at instead of reading every token the person was ever sent.
CREATE INDEX decision_tokens_open ON decision_tokens (org_id, user_id, channel, expires_at) WHERE used_at IS NULL;
