-- Stored hashes become tlog tiles of height 8 (issue 12); see the PostgreSQL migration for the design.
-- The stored index of hash n at level l is the sum of m >> k over k ≥ 0, plus l, with
-- m = (n+1)·2^l − 1 (tlog.StoredHashIndex), summed here over a table of bit positions.

CREATE TABLE audit_tiles (
    org_id TEXT    NOT NULL,
    level  INTEGER NOT NULL CHECK (level >= 0 AND level < 8),
    idx    INTEGER NOT NULL CHECK (idx >= 0),
    data   BLOB    NOT NULL CHECK (typeof(data) = 'blob' AND length(data) % 32 = 0 AND length(data) BETWEEN 32 AND 8192),
    PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID;

INSERT INTO audit_tiles (org_id, level, idx, data)
WITH RECURSIVE
    lv(lvl) AS (SELECT 0 UNION ALL SELECT lvl + 8 FROM lv WHERE lvl < 56),
    bits(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM bits WHERE k < 62),
    pos(org_id, lvl, n, size) AS (
        SELECT h.org_id, lv.lvl, 0, h.size FROM audit_heads h JOIN lv ON (h.size >> lv.lvl) > 0
        UNION ALL
        SELECT org_id, lvl, n + 1, size FROM pos WHERE n + 1 < (size >> lvl)),
    stored(org_id, lvl, n, hidx) AS (
        SELECT org_id, lvl, n, lvl + (SELECT sum((((n + 1) << lvl) - 1) >> k) FROM bits) FROM pos)
SELECT s.org_id, s.lvl / 8, s.n >> 8, CAST(group_concat(x.hash, '' ORDER BY s.n) AS BLOB)
FROM stored s JOIN audit_hashes x ON x.org_id = s.org_id AND x.hidx = s.hidx
GROUP BY s.org_id, s.lvl, s.n >> 8;

-- A tile row is only extended while its tile fills, keeping what it held as its prefix.
CREATE TRIGGER audit_tiles_only_grow BEFORE UPDATE ON audit_tiles
WHEN NOT (NEW.org_id = OLD.org_id AND NEW.level = OLD.level AND NEW.idx = OLD.idx
    AND length(NEW.data) > length(OLD.data) AND substr(NEW.data, 1, length(OLD.data)) = OLD.data)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_tiles_no_delete BEFORE DELETE ON audit_tiles
WHEN NOT EXISTS (SELECT 1 FROM audit_erasing WHERE org_id = OLD.org_id)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

-- DROP TABLE's implicit delete fires no trigger; the hashes' own triggers go with the table.
DROP TABLE audit_hashes;
