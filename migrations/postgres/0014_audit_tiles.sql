-- Stored hashes become tlog tiles of height 8 (issue 12, `ony audit verify`): one row holds up to 256
-- consecutive hashes of one tree level (0, 8, 16, …), 32 bytes each, back to back; the hashes of the
-- levels in between are computed from them (golang.org/x/mod/sumdb/tlog's tiles). A leaf used to
-- cost about two hash rows to write and to read; now a 256-leaf stretch costs one row and a bit.
--
-- Append-only still: a tile row is inserted, then only extended while its tile fills — the new value
-- must keep the old one as its prefix, at the same org, level and index, and stay whole hashes — and
-- deleted only by the erasure function.
--
-- Existing hash rows are converted: for every head, the level-8k hashes it has (the stored index of
-- hash n at level l is 2m − popcount(m) + l with m = (n+1)·2^l − 1), grouped 256 to a tile in order.
-- A hash row that is missing leaves its tile short or shifted, which verification reports.

CREATE TABLE audit_tiles (
    org_id text   NOT NULL,
    level  int    NOT NULL CHECK (level >= 0 AND level < 8),
    idx    bigint NOT NULL CHECK (idx >= 0),
    data   bytea  NOT NULL CHECK (length(data) % 32 = 0 AND length(data) BETWEEN 32 AND 8192),
    PRIMARY KEY (org_id, level, idx)
);

-- Row-level security (FORCE, so the owner too) shows the old rows only in the system scope; the new
-- table has no policy yet.
SELECT set_config('ony.scope', 'system', true);
INSERT INTO audit_tiles (org_id, level, idx, data)
SELECT org_id, lvl / 8, n >> 8, string_agg(hash, ''::bytea ORDER BY n)
FROM (
    SELECT h.org_id, l.lvl, p.n, x.hash
    FROM audit_heads h
    CROSS JOIN generate_series(0, 56, 8) AS l(lvl)
    CROSS JOIN LATERAL generate_series(0::bigint, (h.size >> l.lvl) - 1) AS p(n)
    CROSS JOIN LATERAL (SELECT ((p.n + 1) << l.lvl) - 1 AS m) AS s
    JOIN audit_hashes x ON x.org_id = h.org_id
        AND x.hidx = 2 * s.m - bit_count(s.m::bit(64)) + l.lvl
) AS stored
GROUP BY org_id, lvl, n >> 8;
SELECT set_config('ony.scope', '', true);

CREATE FUNCTION ony_audit_tile_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('ony.erasing', true) = OLD.org_id THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.org_id = OLD.org_id AND NEW.level = OLD.level AND NEW.idx = OLD.idx
        AND length(NEW.data) > length(OLD.data) AND substring(NEW.data FROM 1 FOR length(OLD.data)) = OLD.data THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_tiles_guard BEFORE UPDATE OR DELETE ON audit_tiles FOR EACH ROW EXECUTE FUNCTION ony_audit_tile_guard();

-- Updating is the sequencer's (the guard above bounds it); deleting is the erasure function's alone.
REVOKE DELETE, TRUNCATE ON audit_tiles FROM PUBLIC, CURRENT_USER;

ALTER TABLE audit_tiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_tiles FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON audit_tiles
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));

CREATE OR REPLACE FUNCTION ony_erase_audit(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF target = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'the instance log cannot be erased';
    END IF;
    PERFORM set_config('ony.erasing', target, true);
    EXECUTE format('GRANT DELETE ON audit_leaves, audit_tiles, audit_checkpoints, audit_heads TO %I', current_user);
    DELETE FROM audit_queue WHERE org_id = target;
    DELETE FROM audit_leaves WHERE org_id = target;
    DELETE FROM audit_tiles WHERE org_id = target;
    DELETE FROM audit_checkpoints WHERE org_id = target;
    DELETE FROM audit_heads WHERE org_id = target;
    EXECUTE format('REVOKE DELETE ON audit_leaves, audit_tiles, audit_checkpoints, audit_heads FROM %I', current_user);
    PERFORM set_config('ony.erasing', '', true);
END $$;
REVOKE ALL ON FUNCTION ony_erase_audit(text) FROM PUBLIC;

DROP TABLE audit_hashes;
