-- Chat (issue 14): team decision tokens and link codes; see the PostgreSQL migration for the design.
--
-- SQLite cannot drop a NOT NULL: decision_tokens is rebuilt (nothing references it, so the rename
-- leaves no foreign key dangling).
CREATE TABLE decision_tokens_new (
    org_id     TEXT      NOT NULL,
    hash       BLOB      NOT NULL PRIMARY KEY,
    handoff_id TEXT      NOT NULL,
    user_id    TEXT,
    channel    TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    target     TEXT      NOT NULL DEFAULT '',
    CHECK ((user_id IS NULL) = (target <> '')),
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
INSERT INTO decision_tokens_new (org_id, hash, handoff_id, user_id, channel, created_at, expires_at, used_at, target)
SELECT org_id, hash, handoff_id, user_id, channel, created_at, expires_at, used_at, '' FROM decision_tokens;
DROP TABLE decision_tokens;
ALTER TABLE decision_tokens_new RENAME TO decision_tokens;
CREATE INDEX decision_tokens_handoff ON decision_tokens (org_id, handoff_id);
CREATE INDEX decision_tokens_user ON decision_tokens (org_id, user_id);

CREATE TABLE link_codes (
    org_id     TEXT      NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code_hash  BLOB      NOT NULL,
    user_id    TEXT      NOT NULL,
    kind       TEXT      NOT NULL CHECK (kind <> ''),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    PRIMARY KEY (org_id, code_hash),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX link_codes_hash_key ON link_codes (code_hash);
CREATE INDEX link_codes_user ON link_codes (org_id, user_id, kind);
