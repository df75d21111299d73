-- Sequenced audit log (issue 12). A change records its audit event by inserting it into audit_queue, in
-- its own transaction and without a lock; the sequencer later takes the head lock once per batch, gives
-- queued records their indexes, writes leaves and hashes and deletes the queued rows. The head keeps the
-- tree's frontier (the right edge's complete subtrees, largest first, 32 bytes each) so a batch needs
-- no hash reads; heads written before this migration have an empty one, rebuilt on first use.
--
-- No foreign key to orgs, as for the other audit tables: the instance log (tombstones) has no
-- organization row, and queued rows leave only through the sequencer or the erasure path.
CREATE TABLE audit_queue (
    org_id     text        NOT NULL,
    id         bigserial,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);

ALTER TABLE audit_heads ADD COLUMN frontier bytea NOT NULL DEFAULT ''::bytea;

-- A queued record is never edited: it is sequenced (deleted as its leaf is written) or erased.
CREATE FUNCTION ony_audit_queue_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'queued audit records cannot be changed' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_queue_guard BEFORE UPDATE ON audit_queue FOR EACH ROW EXECUTE FUNCTION ony_audit_queue_guard();

-- A head now grows by a batch at a time while open (and its frontier with it); it can still be sealed
-- once, unchanged. Nothing else.
CREATE OR REPLACE FUNCTION ony_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('ony.erasing', true) = OLD.org_id THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_heads' AND NEW.org_id = OLD.org_id AND OLD.sealed_at IS NULL AND (
           (NEW.size > OLD.size AND NEW.sealed_at IS NULL)
        OR (NEW.size = OLD.size AND NEW.root = OLD.root AND NEW.frontier = OLD.frontier AND NEW.sealed_at IS NOT NULL)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

-- Erasure deletes the queue too: records of the organization that were never sequenced.
CREATE OR REPLACE FUNCTION ony_erase_audit(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF target = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'the instance log cannot be erased';
    END IF;
    PERFORM set_config('ony.erasing', target, true);
    EXECUTE format('GRANT DELETE ON audit_leaves, audit_hashes, audit_checkpoints, audit_heads TO %I', current_user);
    DELETE FROM audit_queue WHERE org_id = target;
    DELETE FROM audit_leaves WHERE org_id = target;
    DELETE FROM audit_hashes WHERE org_id = target;
    DELETE FROM audit_checkpoints WHERE org_id = target;
    DELETE FROM audit_heads WHERE org_id = target;
    EXECUTE format('REVOKE DELETE ON audit_leaves, audit_hashes, audit_checkpoints, audit_heads FROM %I', current_user);
    PERFORM set_config('ony.erasing', '', true);
END $$;
REVOKE ALL ON FUNCTION ony_erase_audit(text) FROM PUBLIC;

ALTER TABLE audit_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_queue FORCE ROW LEVEL SECURITY;
-- The system scope lists which logs have queued records (the sequencer's sweep); only the
-- organization itself reads, writes or dequeues them.
CREATE POLICY org_scope ON audit_queue
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));
CREATE POLICY system_read ON audit_queue FOR SELECT
    USING (current_setting('ony.scope', true) = 'system');
-- The erasure function deletes an organization's queue from the system scope, and only it: it marks
-- the organization it erases in ony.erasing for its own transaction.
CREATE POLICY erase ON audit_queue FOR DELETE
    USING (org_id = current_setting('ony.erasing', true));
