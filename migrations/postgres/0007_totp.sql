-- Second factor and session management (issue 13).
-- user_totp holds one TOTP secret per person, sealed with the keyring (the key version is inside the
-- blob; the associated data binds it to org and user). last_step is the newest time step accepted, so a
-- code is accepted once: a verification moves it forward with a conditional UPDATE.
CREATE TABLE user_totp (
    org_id       text        NOT NULL,
    user_id      text        NOT NULL,
    secret       bytea       NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON user_totp
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));

-- Sessions get a public id (what lists and revocation name; never the secret), when they were last
-- used (the idle timeout) and the browser that opened them. Rows already there get a random public id
-- and count as last seen when they were created.
ALTER TABLE sessions ADD COLUMN public_id text;
ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz;
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY;
UPDATE sessions SET public_id = replace(gen_random_uuid()::text, '-', ''), last_seen_at = created_at;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ALTER COLUMN public_id SET NOT NULL;
CREATE UNIQUE INDEX sessions_public_id ON sessions (public_id);
CREATE INDEX sessions_user ON sessions (org_id, user_id);

-- The first step of a two-step sign-in: the password was right and a TOTP code is still owed. Only the
-- challenge's hash is kept; it is found before the org is known, like a session.
CREATE TABLE login_challenges (
    org_id     text        NOT NULL,
    id_hash    bytea       NOT NULL PRIMARY KEY,
    user_id    text        NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer     NOT NULL DEFAULT 0,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX login_challenges_expires_at ON login_challenges (expires_at);
ALTER TABLE login_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON login_challenges
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system');
