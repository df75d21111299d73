-- People's contacts become rows, and sends are found by the provider's own reference; see the
-- PostgreSQL migration for the design.

CREATE TABLE user_contacts (
    org_id      TEXT      NOT NULL,
    user_id     TEXT      NOT NULL,
    kind        TEXT      NOT NULL CHECK (kind <> ''),
    address     TEXT      NOT NULL CHECK (address <> ''),
    verified_at TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, user_id, kind),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX user_contacts_address ON user_contacts (org_id, kind, address);

INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'phone', phone, created_at, created_at FROM users WHERE phone <> '';
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'slack', slack_id, created_at, created_at FROM users WHERE slack_id <> '';
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'telegram', telegram_id, created_at, created_at FROM users WHERE telegram_id <> '';

ALTER TABLE users DROP COLUMN phone;
ALTER TABLE users DROP COLUMN slack_id;
ALTER TABLE users DROP COLUMN telegram_id;

CREATE INDEX escalation_sends_ref ON escalation_sends (provider, ref) WHERE ref <> '';
