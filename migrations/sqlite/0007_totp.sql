-- Second factor and session management (issue 13); see the PostgreSQL migration for the design.
CREATE TABLE user_totp (
    org_id       TEXT      NOT NULL,
    user_id      TEXT      NOT NULL,
    secret       BLOB      NOT NULL,
    confirmed_at TIMESTAMP,
    last_step    INTEGER   NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, user_id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

-- SQLite cannot add a NOT NULL column without a default: public_id is filled here and always written
-- by the store, and the unique index holds it to one session.
ALTER TABLE sessions ADD COLUMN public_id TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMP;
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
UPDATE sessions SET public_id = lower(hex(randomblob(16))), last_seen_at = created_at;
CREATE UNIQUE INDEX sessions_public_id ON sessions (public_id);
CREATE INDEX sessions_user ON sessions (org_id, user_id);

CREATE TABLE login_challenges (
    org_id     TEXT      NOT NULL,
    id_hash    BLOB      NOT NULL PRIMARY KEY,
    user_id    TEXT      NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    attempts   INTEGER   NOT NULL DEFAULT 0,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX login_challenges_expires_at ON login_challenges (expires_at);
