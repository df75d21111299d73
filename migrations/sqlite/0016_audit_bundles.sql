-- Leaves move into bundles of 32 (issue 12, `ony audit verify`); see the PostgreSQL migration for the
-- design. Each leaf is its length (4 bytes, big-endian, from its hex) then its bytes.

CREATE TABLE audit_bundles (
    org_id TEXT    NOT NULL,
    idx    INTEGER NOT NULL CHECK (idx >= 0),
    n      INTEGER NOT NULL CHECK (n BETWEEN 1 AND 32),
    data   BLOB    NOT NULL CHECK (typeof(data) = 'blob'),
    PRIMARY KEY (org_id, idx)
) WITHOUT ROWID;

INSERT INTO audit_bundles (org_id, idx, n, data)
SELECT org_id, idx / 32, count(*), CAST(group_concat(unhex(printf('%08x', length(data))) || data, '' ORDER BY idx) AS BLOB)
FROM audit_leaves
GROUP BY org_id, idx / 32;

-- A bundle row is only extended while it fills, keeping what it held as its prefix.
CREATE TRIGGER audit_bundles_only_grow BEFORE UPDATE ON audit_bundles
WHEN NOT (NEW.org_id = OLD.org_id AND NEW.idx = OLD.idx AND NEW.n > OLD.n
    AND length(NEW.data) > length(OLD.data) AND substr(NEW.data, 1, length(OLD.data)) = OLD.data)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_bundles_no_delete BEFORE DELETE ON audit_bundles
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

-- DROP TABLE's implicit delete fires no trigger; the leaves' own triggers go with the table.
DROP TABLE audit_leaves;
