-- Per-organization RFC 6962 Merkle logs; see the PostgreSQL migration for the design. SQLite has no
-- grants, so triggers alone keep the log append-only; the erasure path marks its org in audit_erasing.

CREATE TABLE audit_heads (
    org_id     TEXT      PRIMARY KEY,
    size       INTEGER   NOT NULL CHECK (size >= 0),
    root       BLOB      NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- Set when the organization is being erased: the log takes no more leaves.
    sealed_at  TIMESTAMP
);

CREATE TABLE audit_leaves (
    org_id     TEXT      NOT NULL,
    idx        INTEGER   NOT NULL CHECK (idx >= 0),
    data       BLOB      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, idx)
);

CREATE TABLE audit_hashes (
    org_id TEXT    NOT NULL,
    hidx   INTEGER NOT NULL CHECK (hidx >= 0),
    hash   BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, hidx)
);

CREATE TABLE audit_checkpoints (
    org_id     TEXT      NOT NULL,
    size       INTEGER   NOT NULL,
    note       BLOB      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, size)
);

CREATE TABLE audit_erasing (org_id TEXT PRIMARY KEY);

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
-- A head moves one leaf at a time while open, and can be sealed once, unchanged; nothing else.
CREATE TRIGGER audit_heads_only_grow BEFORE UPDATE ON audit_heads
WHEN NOT (NEW.org_id = OLD.org_id AND OLD.sealed_at IS NULL AND (
       (NEW.size = OLD.size + 1 AND NEW.sealed_at IS NULL)
    OR (NEW.size = OLD.size AND NEW.root = OLD.root AND NEW.sealed_at IS NOT NULL)))
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
