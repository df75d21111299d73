-- Organizations, people, agent devices, sessions and handoffs. SQLite has no row-level security; the
-- store's org-scoped transactions bind every query to one org_id, and keys are (org_id, id).

CREATE TABLE orgs (
    id                  TEXT      PRIMARY KEY,
    name                TEXT      NOT NULL,
    max_timeout_seconds INTEGER   NOT NULL CHECK (max_timeout_seconds > 0),
    created_at          TIMESTAMP NOT NULL
);

CREATE TABLE users (
    org_id        TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id            TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    timezone      TEXT    NOT NULL DEFAULT 'UTC',
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE devices (
    org_id       TEXT      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id           TEXT      NOT NULL,
    name         TEXT      NOT NULL,
    token_hash   BLOB      NOT NULL,
    callback_key BLOB      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX devices_token_hash_key ON devices (token_hash);

CREATE TABLE sessions (
    org_id     TEXT      NOT NULL,
    id_hash    BLOB      NOT NULL PRIMARY KEY,
    user_id    TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE handoffs (
    org_id           TEXT      NOT NULL,
    id               TEXT      NOT NULL,
    device_id        TEXT      NOT NULL,
    action           TEXT      NOT NULL,
    title            TEXT      NOT NULL,
    summary          TEXT      NOT NULL,
    risk             TEXT      NOT NULL CHECK (risk IN ('low', 'medium', 'high', 'critical')),
    risk_reasons     TEXT      NOT NULL,
    options          TEXT      NOT NULL,
    labels           TEXT      NOT NULL,
    payload_kind     TEXT      NOT NULL,
    payload_size     INTEGER   NOT NULL,
    payload_sealed   BLOB,
    callback_url     TEXT      NOT NULL,
    status           TEXT      NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    decision_option  TEXT      NOT NULL DEFAULT '',
    decided_by_kind  TEXT      NOT NULL DEFAULT '',
    decided_by_id    TEXT      NOT NULL DEFAULT '',
    decided_by_name  TEXT      NOT NULL DEFAULT '',
    decision_channel TEXT      NOT NULL DEFAULT '',
    decision_comment TEXT      NOT NULL DEFAULT '',
    decided_at       TIMESTAMP,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id) ON DELETE CASCADE
);
CREATE INDEX handoffs_org_status ON handoffs (org_id, status, created_at DESC);

CREATE TABLE idempotency_keys (
    org_id       TEXT      NOT NULL,
    device_id    TEXT      NOT NULL,
    key          TEXT      NOT NULL,
    request_hash BLOB      NOT NULL,
    handoff_id   TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, device_id, key),
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE
);
