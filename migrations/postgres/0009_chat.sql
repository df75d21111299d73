-- Chat (issue 14): a decision token may be bound to a team destination instead of a person, and a
-- person links their chat account by sending a short code from the console to the bot.
--
-- A team token (a post in slack:#incidents) has no person: user_id is NULL and target names the
-- destination; whoever taps is resolved from their chat account when they answer. Exactly one of the
-- two is set.
ALTER TABLE decision_tokens ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE decision_tokens ADD COLUMN target text NOT NULL DEFAULT '';
ALTER TABLE decision_tokens ADD CONSTRAINT decision_tokens_person_or_team
    CHECK ((user_id IS NULL) = (target <> ''));

-- A link code is shown in the console and sent to the bot from the chat account to link. Only its
-- SHA-256 is kept. The bot knows no organization, so the system scope may read codes by hash; only the
-- organization writes them. Using one is a conditional update, so a code works once.
CREATE TABLE link_codes (
    org_id     text        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code_hash  bytea       NOT NULL,
    user_id    text        NOT NULL,
    kind       text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (org_id, code_hash),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX link_codes_hash_key ON link_codes (code_hash);
CREATE INDEX link_codes_user ON link_codes (org_id, user_id, kind);

ALTER TABLE link_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE link_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON link_codes
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));
CREATE POLICY system_read ON link_codes FOR SELECT
    USING (current_setting('ony.scope', true) = 'system');
