-- Per-organization RFC 6962 Merkle logs. Leaves are the exact bytes that were hashed; hashes are stored
-- at tlog's stored-hash indexes; the head is the size and root, locked by every append so indexes are
-- contiguous. The instance's own log (erasure tombstones) uses the reserved all-zero org id. No foreign
-- key to orgs: a log must be erasable only through its own path, and tombstones outlive their org.

CREATE TABLE audit_heads (
    org_id     text        PRIMARY KEY,
    size       bigint      NOT NULL CHECK (size >= 0),
    root       bytea       NOT NULL,
    updated_at timestamptz NOT NULL,
    -- Set when the organization is being erased: the log takes no more leaves.
    sealed_at  timestamptz
);

CREATE TABLE audit_leaves (
    org_id     text        NOT NULL,
    idx        bigint      NOT NULL CHECK (idx >= 0),
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, idx)
);

CREATE TABLE audit_hashes (
    org_id text   NOT NULL,
    hidx   bigint NOT NULL CHECK (hidx >= 0),
    hash   bytea  NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, hidx)
);

CREATE TABLE audit_checkpoints (
    org_id     text        NOT NULL,
    size       bigint      NOT NULL,
    note       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, size)
);

-- Append-only: leaves, hashes and checkpoints can be inserted, never changed; a head only grows.
-- Deleting is allowed only inside the erasure path, which sets ony.erasing for its transaction.
CREATE FUNCTION ony_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('ony.erasing', true) = OLD.org_id THEN
        RETURN OLD;
    END IF;
    -- A head moves one leaf at a time while open, and can be sealed once, unchanged; nothing else.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_heads' AND NEW.org_id = OLD.org_id AND OLD.sealed_at IS NULL AND (
           (NEW.size = OLD.size + 1 AND NEW.sealed_at IS NULL)
        OR (NEW.size = OLD.size AND NEW.root = OLD.root AND NEW.sealed_at IS NOT NULL)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_leaves_guard BEFORE UPDATE OR DELETE ON audit_leaves FOR EACH ROW EXECUTE FUNCTION ony_audit_guard();
CREATE TRIGGER audit_hashes_guard BEFORE UPDATE OR DELETE ON audit_hashes FOR EACH ROW EXECUTE FUNCTION ony_audit_guard();
CREATE TRIGGER audit_checkpoints_guard BEFORE UPDATE OR DELETE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION ony_audit_guard();
CREATE TRIGGER audit_heads_guard BEFORE UPDATE OR DELETE ON audit_heads FOR EACH ROW EXECUTE FUNCTION ony_audit_guard();

-- Nobody keeps a right to rewrite history, the owner included. Erasing a whole organization is the one
-- exception, through this function: it runs as the owner, grants itself DELETE for its own transaction,
-- marks the organization it erases for the guard above, and revokes the grant before it returns.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_leaves, audit_hashes, audit_checkpoints FROM PUBLIC, CURRENT_USER;
REVOKE DELETE, TRUNCATE ON audit_heads FROM PUBLIC, CURRENT_USER;

CREATE FUNCTION ony_erase_audit(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF target = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'the instance log cannot be erased';
    END IF;
    PERFORM set_config('ony.erasing', target, true);
    EXECUTE format('GRANT DELETE ON audit_leaves, audit_hashes, audit_checkpoints, audit_heads TO %I', current_user);
    DELETE FROM audit_leaves WHERE org_id = target;
    DELETE FROM audit_hashes WHERE org_id = target;
    DELETE FROM audit_checkpoints WHERE org_id = target;
    DELETE FROM audit_heads WHERE org_id = target;
    EXECUTE format('REVOKE DELETE ON audit_leaves, audit_hashes, audit_checkpoints, audit_heads FROM %I', current_user);
    PERFORM set_config('ony.erasing', '', true);
END $$;
REVOKE ALL ON FUNCTION ony_erase_audit(text) FROM PUBLIC;

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON audit_heads
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));
ALTER TABLE audit_leaves ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_leaves FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON audit_leaves
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));
ALTER TABLE audit_hashes ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_hashes FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON audit_hashes
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON audit_checkpoints
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));
