-- Identity (issue 13): one-time codes, organization settings, last activity; see the PostgreSQL
-- migration for the design.
CREATE TABLE one_time_codes (
    org_id     TEXT      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id         TEXT      NOT NULL,
    purpose    TEXT      NOT NULL CHECK (purpose IN ('invite', 'reset')),
    email      TEXT      NOT NULL,
    user_id    TEXT,
    role       TEXT      CHECK (role IN ('admin', 'member', 'viewer')),
    code_hash  BLOB      NOT NULL,
    created_by TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX one_time_codes_hash_key ON one_time_codes (code_hash);
CREATE INDEX one_time_codes_email ON one_time_codes (email, purpose);

ALTER TABLE orgs ADD COLUMN stepup_risks TEXT NOT NULL DEFAULT 'high,critical';
ALTER TABLE orgs ADD COLUMN payload_retention_days INTEGER CHECK (payload_retention_days BETWEEN 1 AND 3650);

ALTER TABLE users ADD COLUMN last_active_at TIMESTAMP;
