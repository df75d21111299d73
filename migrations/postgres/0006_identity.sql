-- Identity (issue 13): one-time codes for invites and password resets, per-organization settings, and
-- when a person was last active.
--
-- A code is a random token whose SHA-256 alone is stored. A link carries no organization, so the
-- system scope may read codes (by hash); only the organization itself writes them. Using a code is a
-- conditional update (used_at IS NULL AND expires_at > now), so a code works once.
CREATE TABLE one_time_codes (
    org_id     text        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id         text        NOT NULL,
    purpose    text        NOT NULL CHECK (purpose IN ('invite', 'reset')),
    email      text        NOT NULL,
    user_id    text,
    role       text        CHECK (role IN ('admin', 'member', 'viewer')),
    code_hash  bytea       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX one_time_codes_hash_key ON one_time_codes (code_hash);
CREATE INDEX one_time_codes_email ON one_time_codes (email, purpose);

ALTER TABLE one_time_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON one_time_codes
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));
CREATE POLICY system_read ON one_time_codes FOR SELECT
    USING (current_setting('ony.scope', true) = 'system');

-- The risks whose approval needs a TOTP step-up (comma-separated), and how long payloads are kept
-- (NULL: kept until the handoff is erased).
ALTER TABLE orgs ADD COLUMN stepup_risks text NOT NULL DEFAULT 'high,critical';
ALTER TABLE orgs ADD COLUMN payload_retention_days integer CHECK (payload_retention_days BETWEEN 1 AND 3650);

ALTER TABLE users ADD COLUMN last_active_at timestamptz;
