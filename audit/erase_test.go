package audit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

var admin = audit.Actor{Kind: "system", ID: "admin-cli"}

// TestEraseOrg erases org A: its log and rows are gone, org B's log is untouched and verifies, and the
// instance log holds one org.erased tombstone naming A's final size and root and nothing personal.
func TestEraseOrg(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		a := storetest.NewFixture(t, s, "Acme Secret Holdings")
		b := storetest.NewFixture(t, s, "Bravo")
		appendN(t, s, l, a.Org.ID, 0, 7)
		appendN(t, s, l, b.Org.ID, 0, 4)
		checkpoint(t, s, l, a.Org.ID)
		_, cb := checkpoint(t, s, l, b.Org.ID)
		finalA := head(t, s, a.Org.ID)
		repB := verifyOK(t, s, l, b.Org.ID, 4)

		if err := l.EraseOrg(ctx, s, a.Org.ID, admin); err != nil {
			t.Fatalf("EraseOrg: %v", err)
		}

		// A is gone: org, people, handoffs and the whole log.
		err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			if _, err := tx.Org(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("org row: %v", err)
			}
			if us, err := tx.ListUsers(ctx); err != nil || len(us) != 0 {
				t.Errorf("users: %v, %v", us, err)
			}
			if _, err := tx.HandoffByID(ctx, a.Handoff.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("handoff: %v", err)
			}
			if _, err := tx.AuditHead(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("head: %v", err)
			}
			if ls, err := tx.AuditLeaves(ctx, 0, 100); err != nil || len(ls) != 0 {
				t.Errorf("leaves: %d, %v", len(ls), err)
			}
			if ts, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}}); err != nil || len(ts) != 0 {
				t.Errorf("hash tiles: %d, %v", len(ts), err)
			}
			if _, err := tx.AuditLatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("checkpoint: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := rawCount(t, s, `SELECT count(*) FROM audit_bundles WHERE org_id = ?`, a.Org.ID); n != 0 {
			t.Errorf("%d of A's leaves remain in the table", n)
		}

		// B is untouched.
		rep := verifyOK(t, s, l, b.Org.ID, 4)
		if rep.Root != repB.Root || rep.CheckpointSize != cb.Size {
			t.Fatalf("B changed: %+v then %+v", repB, rep)
		}
		if err := s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
			_, err := tx.UserByID(ctx, b.User.ID)
			return err
		}); err != nil {
			t.Fatalf("B's user: %v", err)
		}

		// The instance log holds the tombstone.
		var ids []string
		if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditLogIDs(ctx); return err }); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ids, a.Org.ID) || !slices.Contains(ids, b.Org.ID) || !slices.Contains(ids, store.InstanceLogID) {
			t.Fatalf("AuditLogIDs after erasure: %v", ids)
		}
		ls := leaves(t, s, store.InstanceLogID)
		if len(ls) != 1 {
			t.Fatalf("instance log has %d leaves, want 1", len(ls))
		}
		tomb := mustDecode(t, ls[0].Data)
		if tomb.Type != audit.OrgErased || tomb.Actor != admin || tomb.Subject != (audit.Subject{Kind: "org", ID: a.Org.ID}) ||
			tomb.Channel != "system" || tomb.Details == nil {
			t.Fatalf("tombstone %+v", tomb)
		}
		if tomb.Details.Size != finalA.Size || tomb.Details.Root != base64.StdEncoding.EncodeToString(finalA.Root) {
			t.Fatalf("tombstone records %d/%s, A's final head was %d/%x", tomb.Details.Size, tomb.Details.Root, finalA.Size, finalA.Root)
		}
		for _, personal := range []string{a.User.Email, a.User.Name, a.Org.Name, "@", "Acme", a.User.ID, a.Device.ID, a.Handoff.ID} {
			if bytes.Contains(ls[0].Data, []byte(personal)) {
				t.Errorf("tombstone contains %q: %s", personal, ls[0].Data)
			}
		}
		verifyOK(t, s, l, store.InstanceLogID, 1)
		note, c := checkpoint(t, s, l, store.InstanceLogID)
		if c.Origin != instance+"/instance" || c.Size != 1 {
			t.Fatalf("instance checkpoint %+v", c)
		}
		var buf bytes.Buffer
		if err := l.Export(ctx, s, store.InstanceLogID, &buf); err != nil {
			t.Fatal(err)
		}
		if rep, err := audit.VerifyExport(buf.Bytes(), l.Keys(), note); err != nil || !rep.OK() || rep.Size != 1 {
			t.Fatalf("instance export: %+v, %v", rep, err)
		}

		// The erasure path put the guards back.
		if dialect == "postgres" {
			var del bool
			if err := s.DB().QueryRowContext(ctx, `SELECT has_table_privilege(current_user, 'audit_bundles', 'DELETE')`).Scan(&del); err != nil || del {
				t.Fatalf("after erasure the runtime role holds DELETE on audit_bundles (%v)", err)
			}
		} else if n := rawCount(t, s, `SELECT count(*) FROM audit_erasing`); n != 0 {
			t.Fatalf("%d orgs left marked as erasing", n)
		}
		if _, err := runtimeExec(t, s, b.Org.ID, `DELETE FROM audit_bundles WHERE org_id = ?`, b.Org.ID); err == nil {
			t.Fatal("after erasure B's leaves can be deleted")
		}

		// A second org can be erased too, and the tombstones chain in the instance log.
		appendN(t, s, l, b.Org.ID, 4, 1)
		finalB := head(t, s, b.Org.ID)
		if err := l.EraseOrg(ctx, s, b.Org.ID, admin); err != nil {
			t.Fatal(err)
		}
		verifyOK(t, s, l, store.InstanceLogID, 2)
		if rep, err := audit.VerifyExport(exportBytes(t, l, s, store.InstanceLogID), l.Keys(), note); err != nil || !rep.OK() {
			t.Fatalf("instance export after the second erasure, against the first checkpoint: %+v, %v", rep, err)
		}
		if d := mustDecode(t, leaves(t, s, store.InstanceLogID)[1].Data).Details; d.Size != 5 || d.Root != base64.StdEncoding.EncodeToString(finalB.Root) {
			t.Fatalf("second tombstone %+v", d)
		}
	})
}

// TestEraseOrgRefusedLeavesNoTombstone asks to erase what cannot be erased — the instance log itself, and
// an org that does not exist — and requires that nothing is recorded: a tombstone for a refused
// erasure would leave the instance log claiming an erasure that never happened.
func TestEraseOrgRefusedLeavesNoTombstone(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		a := storetest.NewFixture(t, s, "acme")
		appendN(t, s, l, a.Org.ID, 0, 2)
		for _, id := range []string{store.InstanceLogID, "no-such-org"} {
			if err := l.EraseOrg(ctx, s, id, admin); err == nil {
				t.Errorf("EraseOrg(%s) succeeded", id)
			}
		}
		var tombs []string
		for _, lf := range leaves(t, s, store.InstanceLogID) {
			tombs = append(tombs, mustDecode(t, lf.Data).Subject.ID)
		}
		if len(tombs) != 0 {
			t.Errorf("refused erasures left tombstones for %v in the instance log", tombs)
		}
		var ids []string
		if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditLogIDs(ctx); return err }); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ids, "no-such-org") {
			t.Errorf("a refused erasure created a log for the unknown org: %v", ids)
		}
		verifyOK(t, s, l, a.Org.ID, 2)
	})
}

// hookStore runs before each time a transaction of the instance log begins.
type hookStore struct {
	store.Store
	beforeInstance func()
}

func (h hookStore) InOrg(c context.Context, orgID string, fn func(store.OrgTx) error) error {
	if orgID == store.InstanceLogID && h.beforeInstance != nil {
		h.beforeInstance()
	}
	return h.Store.InOrg(c, orgID, fn)
}

// TestEraseOrgTombstoneMatchesErasedLog tries to land a decision in org A's log while A is being
// erased — after EraseOrg read A's head, before it deleted the log. Erasure seals the log first, so the
// late append must be refused with ErrSealed, and the tombstone must describe exactly the log deleted.
func TestEraseOrgTombstoneMatchesErasedLog(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		a := storetest.NewFixture(t, s, "acme")
		appendN(t, s, l, a.Org.ID, 0, 3)
		once := false
		var lateErr error
		hooked := hookStore{Store: s, beforeInstance: func() {
			if !once {
				once = true
				lateErr = s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error { // a decision lands mid-erasure
					err := l.Append(ctx, tx, event(3))
					return err
				})
			}
		}}
		err := l.EraseOrg(ctx, hooked, a.Org.ID, admin)
		if !once {
			t.Fatal("the hook did not run")
		}
		if err != nil {
			return // refusing is a fine answer to a log that moved
		}
		if !errors.Is(lateErr, audit.ErrSealed) {
			t.Fatalf("an append during erasure: %v, want ErrSealed", lateErr)
		}
		tomb := mustDecode(t, leaves(t, s, store.InstanceLogID)[0].Data)
		if tomb.Details.Size != 3 {
			t.Errorf("the erased log had 3 leaves; the tombstone records %d", tomb.Details.Size)
		}
	})
}

func exportBytes(t *testing.T, l *audit.Log, s store.Store, org string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := l.Export(ctx, s, org, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawCount runs a count query on the store's own connection (SQLite has no row-level security; on
// PostgreSQL the query runs in the system scope).
func rawCount(t *testing.T, s *sqlstore.Store, q string, args ...any) int {
	t.Helper()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if s.Dialect() == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`); err != nil {
			t.Fatal(err)
		}
		q = (&rawDB{dialect: "postgres"}).rebind(q)
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
