-- The audit log's leaves and stored hashes move into WITHOUT ROWID tables clustered on their primary key
-- (issue 12, `ony audit verify`). A rowid table keeps (org_id, idx) in a separate index, so every row
-- verification reads in index order costs an index step and a seek into the table; clustered, a page
-- of leaves or hashes is one range of one b-tree. Same columns, same constraints, same guards.
--
-- Existing logs are copied whole. DROP TABLE's implicit delete fires no trigger, so the guards below
-- are recreated on the new tables, unchanged (see 0002).

CREATE TABLE audit_leaves_new (
    org_id     TEXT      NOT NULL,
    idx        INTEGER   NOT NULL CHECK (idx >= 0),
    data       BLOB      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, idx)
) WITHOUT ROWID;
INSERT INTO audit_leaves_new (org_id, idx, data, created_at)
    SELECT org_id, idx, data, created_at FROM audit_leaves ORDER BY org_id, idx;
DROP TABLE audit_leaves;
ALTER TABLE audit_leaves_new RENAME TO audit_leaves;

CREATE TABLE audit_hashes_new (
    org_id TEXT    NOT NULL,
    hidx   INTEGER NOT NULL CHECK (hidx >= 0),
    hash   BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, hidx)
) WITHOUT ROWID;
INSERT INTO audit_hashes_new (org_id, hidx, hash)
    SELECT org_id, hidx, hash FROM audit_hashes ORDER BY org_id, hidx;
DROP TABLE audit_hashes;
ALTER TABLE audit_hashes_new RENAME TO audit_hashes;

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
