-- Escalation: contact settings, versioned ladders, the ladder frozen onto each handoff, sends and
-- decision tokens; see the PostgreSQL migration for the design. Erasure relies on the cascades.

ALTER TABLE users ADD COLUMN phone       TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN slack_id    TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN telegram_id TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN quiet_hours TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN groups      TEXT NOT NULL DEFAULT '[]';

ALTER TABLE handoffs ADD COLUMN ladder_name    TEXT    NOT NULL DEFAULT '';
ALTER TABLE handoffs ADD COLUMN ladder_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE handoffs ADD COLUMN ladder         TEXT    NOT NULL DEFAULT '';

CREATE TABLE ladders (
    org_id     TEXT      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       TEXT      NOT NULL,
    version    INTEGER   NOT NULL CHECK (version > 0),
    source     BLOB      NOT NULL,
    created_by TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, name, version)
);

CREATE TABLE escalation_sends (
    org_id     TEXT      NOT NULL,
    handoff_id TEXT      NOT NULL,
    key        TEXT      NOT NULL,
    climb      INTEGER   NOT NULL,
    step       INTEGER   NOT NULL,
    attempt    INTEGER   NOT NULL,
    channel    TEXT      NOT NULL,
    target     TEXT      NOT NULL,
    provider   TEXT      NOT NULL DEFAULT '',
    state      TEXT      NOT NULL CHECK (state IN ('sending', 'sent', 'delivered', 'answered', 'no_answer', 'busy',
                                                   'failed', 'capped', 'quiet', 'skipped', 'step')),
    ref        TEXT      NOT NULL DEFAULT '',
    detail     TEXT      NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, handoff_id, key),
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE
);
CREATE INDEX escalation_sends_inbox ON escalation_sends (org_id, channel, target, handoff_id);

CREATE TABLE decision_tokens (
    org_id     TEXT      NOT NULL,
    hash       BLOB      NOT NULL PRIMARY KEY,
    handoff_id TEXT      NOT NULL,
    user_id    TEXT      NOT NULL,
    channel    TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX decision_tokens_handoff ON decision_tokens (org_id, handoff_id);
CREATE INDEX decision_tokens_user ON decision_tokens (org_id, user_id);
