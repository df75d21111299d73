-- Sequenced audit log (issue 12); see the PostgreSQL migration for the design.
CREATE TABLE audit_queue (
    id         INTEGER   PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT      NOT NULL,
    data       BLOB      NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_queue_org ON audit_queue (org_id, id);

ALTER TABLE audit_heads ADD COLUMN frontier BLOB NOT NULL DEFAULT x'';

CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue
BEGIN SELECT RAISE(ABORT, 'queued audit records cannot be changed'); END;

-- A head now grows by a batch at a time while open (and its frontier with it); it can still be sealed
-- once, unchanged. Nothing else.
DROP TRIGGER audit_heads_only_grow;
CREATE TRIGGER audit_heads_only_grow BEFORE UPDATE ON audit_heads
WHEN NOT (NEW.org_id = OLD.org_id AND OLD.sealed_at IS NULL AND (
       (NEW.size > OLD.size AND NEW.sealed_at IS NULL)
    OR (NEW.size = OLD.size AND NEW.root = OLD.root AND NEW.frontier = OLD.frontier AND NEW.sealed_at IS NOT NULL)))
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
