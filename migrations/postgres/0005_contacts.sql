-- People's contacts become rows: a person has at most one contact of each kind (a phone number, a
-- Slack member id, a Telegram chat id; channel kinds name which one they use), and a contact that
-- needs verifying (a phone) counts only once verified_at is set. The numbers and ids already stored
-- were set by an operator, who vouches for them: they move over verified.

CREATE TABLE user_contacts (
    org_id      text        NOT NULL,
    user_id     text        NOT NULL,
    kind        text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    address     text        NOT NULL CHECK (address <> ''),
    verified_at timestamptz,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id, kind),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
-- Finding the person behind an address (a chat user who taps a button, the number an SMS came from).
CREATE INDEX user_contacts_address ON user_contacts (org_id, kind, address);

-- Row-level security binds the owner too (FORCE), and a migration has no org scope: lift it from users
-- for the copy (user_contacts gets its policies after it), within this transaction only.
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'phone', phone, created_at, created_at FROM users WHERE phone <> '';
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'slack', slack_id, created_at, created_at FROM users WHERE slack_id <> '';
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at)
SELECT org_id, id, 'telegram', telegram_id, created_at, created_at FROM users WHERE telegram_id <> '';

ALTER TABLE users FORCE ROW LEVEL SECURITY;

ALTER TABLE users DROP COLUMN phone;
ALTER TABLE users DROP COLUMN slack_id;
ALTER TABLE users DROP COLUMN telegram_id;

-- People are read with their contacts, and login reads a person before the org is known.
ALTER TABLE user_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON user_contacts
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));
CREATE POLICY system_read ON user_contacts FOR SELECT
    USING (current_setting('ony.scope', true) = 'system');

-- A provider's status callback carries only its own id for the message or call: the send is found
-- by (provider, ref) before its org is known, so the system scope may read sends (never write them).
CREATE INDEX escalation_sends_ref ON escalation_sends (provider, ref) WHERE ref <> '';
CREATE POLICY system_read ON escalation_sends FOR SELECT
    USING (current_setting('ony.scope', true) = 'system');
