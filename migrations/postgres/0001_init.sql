-- Organizations, people, agent devices, sessions and handoffs.
-- Every org-owned table carries org_id, keys are (org_id, id), and row-level security (FORCE, so the
-- owning role is bound too) is the backstop behind the store's org-scoped transactions.

CREATE TABLE orgs (
    id                  text        PRIMARY KEY,
    name                text        NOT NULL,
    max_timeout_seconds bigint      NOT NULL CHECK (max_timeout_seconds > 0),
    created_at          timestamptz NOT NULL
);

CREATE TABLE users (
    org_id        text        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id            text        NOT NULL,
    email         text        NOT NULL,
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    timezone      text        NOT NULL DEFAULT 'UTC',
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE devices (
    org_id       text        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id           text        NOT NULL,
    name         text        NOT NULL,
    token_hash   bytea       NOT NULL,
    callback_key bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX devices_token_hash_key ON devices (token_hash);

CREATE TABLE sessions (
    org_id     text        NOT NULL,
    id_hash    bytea       NOT NULL PRIMARY KEY,
    user_id    text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE handoffs (
    org_id             text        NOT NULL,
    id                 text        NOT NULL,
    device_id          text        NOT NULL,
    action             text        NOT NULL,
    title              text        NOT NULL,
    summary            text        NOT NULL,
    risk               text        NOT NULL CHECK (risk IN ('low', 'medium', 'high', 'critical')),
    risk_reasons       text        NOT NULL,
    options            text        NOT NULL,
    labels             text        NOT NULL,
    payload_kind       text        NOT NULL,
    payload_size       integer     NOT NULL,
    payload_sealed     bytea,
    callback_url       text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    decision_option    text        NOT NULL DEFAULT '',
    decided_by_kind    text        NOT NULL DEFAULT '',
    decided_by_id      text        NOT NULL DEFAULT '',
    decided_by_name    text        NOT NULL DEFAULT '',
    decision_channel   text        NOT NULL DEFAULT '',
    decision_comment   text        NOT NULL DEFAULT '',
    decided_at         timestamptz,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id) ON DELETE CASCADE
);
CREATE INDEX handoffs_org_status ON handoffs (org_id, status, created_at DESC);

CREATE TABLE idempotency_keys (
    org_id       text        NOT NULL,
    device_id    text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    handoff_id   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, device_id, key),
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE
);

-- ony.org_id is set per transaction by the store (set_config(..., true)); ony.scope = 'system' is set only
-- by the few instance-level lookups (bootstrap, login, credential resolution).
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON orgs
    USING (id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system');

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON users
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system');

ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON devices
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system');

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON sessions
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system');

ALTER TABLE handoffs ENABLE ROW LEVEL SECURITY;
ALTER TABLE handoffs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON handoffs
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON idempotency_keys
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));
