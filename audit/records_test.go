package audit_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

// openAsOwner opens a fresh store plus a raw connection with the powers of whoever owns the database:
// on PostgreSQL the schema's owning role, which cannot rewrite the log as migrated but can grant itself
// the rights back and switch the guard triggers off (row-level security still binds it, so it scopes
// itself to the organization it tampers with); on SQLite whoever can write the file, triggers dropped.
func openAsOwner(t *testing.T, dialect string) (*sqlstore.Store, *rawDB) {
	t.Helper()
	if dialect == "sqlite" {
		return openTamperable(t, dialect)
	}
	url := testdb.PostgresURL(t) // a schema owned by the role the store connects as
	s := testdb.OpenURL(t, url)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawDB{dialect: dialect, conn: conn}
	var owner, super bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_has_role(current_user, (SELECT tableowner FROM pg_tables WHERE tablename = 'audit_bundles' AND schemaname = current_schema()), 'USAGE'),
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&owner, &super); err != nil || !owner || super {
		t.Fatalf("the tamper connection must be the owner and not a superuser (owner=%v, super=%v, err=%v)", owner, super, err)
	}
	r.exec(t, `GRANT UPDATE, DELETE ON audit_bundles, audit_tiles, audit_checkpoints, audit_heads TO CURRENT_USER`)
	for _, tbl := range []string{"audit_bundles", "audit_tiles", "audit_checkpoints", "audit_heads"} {
		r.exec(t, `ALTER TABLE `+tbl+` DISABLE TRIGGER `+tbl+`_guard`)
	}
	return s, r
}

// scope binds the raw connection to org for row-level security (PostgreSQL; SQLite has none).
func (r *rawDB) scope(t *testing.T, org string) {
	t.Helper()
	if r.dialect == "postgres" {
		r.exec(t, `SELECT set_config('ony.org_id', ?, false)`, org)
	}
}

// cutTail does what a database owner would to make the log forget its tail and still verify: delete
// the leaves from index to on and their hashes, delete the checkpoints signed over them, and reset the
// head to the size and root of the checkpoint at index, which must exist.
func cutTail(t *testing.T, r *rawDB, org string, to int64) {
	t.Helper()
	r.scope(t, org)
	var note []byte
	if err := r.conn.QueryRowContext(ctx, r.rebind(`SELECT note FROM audit_checkpoints WHERE org_id = ? AND size = ?`), org, to).Scan(&note); err != nil {
		t.Fatalf("the checkpoint at %d to cut back to: %v", to, err)
	}
	c, err := audit.ParseCheckpoint(string(note[:strings.Index(string(note), "\n\n")+1]))
	if err != nil {
		t.Fatal(err)
	}
	if n := r.cutLeaves(t, org, to); n == 0 {
		t.Fatal("deleted no leaves")
	}
	cutTiles(t, r, org, to)
	if n := r.exec(t, `DELETE FROM audit_checkpoints WHERE org_id = ? AND size > ?`, org, to); n == 0 {
		t.Fatal("deleted no checkpoints")
	}
	if n := r.exec(t, `UPDATE audit_heads SET size = ?, root = ? WHERE org_id = ?`, to, c.Root[:], org); n != 1 {
		t.Fatalf("head update touched %d rows", n)
	}
}

// history writes handoffs the way the handoff service does: each row with its leaf, in one transaction.
type history struct {
	t *testing.T
	s store.Store
	l *audit.Log
	f storetest.Fixture
}

func newHistory(t *testing.T, s store.Store, l *audit.Log) *history {
	t.Helper()
	h := &history{t: t, s: s, l: l, f: storetest.NewFixture(t, s, "acme")}
	h.created(h.f.Handoff) // the fixture's handoff, written without its leaf
	return h
}

func (h *history) created(ho store.Handoff) {
	h.t.Helper()
	err := h.s.InOrg(ctx, h.f.Org.ID, func(tx store.OrgTx) error {
		if ho.ID != h.f.Handoff.ID {
			if err := tx.InsertHandoff(ctx, ho); err != nil {
				return err
			}
		}
		err := h.l.Append(ctx, tx, audit.Event{Type: audit.HandoffCreated, At: ho.CreatedAt,
			Actor: audit.Actor{Kind: "device", ID: ho.DeviceID}, Subject: audit.Subject{Kind: "handoff", ID: ho.ID}, Channel: "api",
			Details: &audit.Details{Action: ho.Action, Risk: ho.Risk, TitleHash: audit.TitleHash(ho.Title)}})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// create writes a new pending handoff and its handoff.created leaf.
func (h *history) create() store.Handoff {
	h.t.Helper()
	ho := storetest.NewHandoff(h.f.Org.ID, h.f.Device.ID)
	h.created(ho)
	return ho
}

// finish moves id to st and appends the leaf the service appends (handoff.finishEvent).
func (h *history) finish(id string, st store.Status) {
	h.t.Helper()
	d := store.Decision{ByKind: store.ActorSystem, ByID: "expiry", Channel: "system", DecidedAt: time.Now()}
	e := audit.Event{Type: audit.HandoffExpired, At: d.DecidedAt, Subject: audit.Subject{Kind: "handoff", ID: id}, Outcome: string(st)}
	switch st {
	case store.StatusApproved, store.StatusDenied:
		d.OptionID, d.ByKind, d.ByID, d.Channel = "approve", store.ActorUser, h.f.User.ID, "console"
		e.Type, e.Details = audit.HandoffDecided, &audit.Details{Option: d.OptionID}
		e.Actor = audit.Actor{Kind: "user", ID: h.f.User.ID, Role: "admin"}
	case store.StatusCancelled:
		d.ByKind, d.ByID, d.Channel = store.ActorDevice, h.f.Device.ID, "api"
		e.Type, e.Actor = audit.HandoffCancelled, audit.Actor{Kind: "device", ID: h.f.Device.ID}
	default:
		e.Actor = audit.Actor{Kind: "system", ID: "expiry"}
	}
	e.Channel = d.Channel
	err := h.s.InOrg(ctx, h.f.Org.ID, func(tx store.OrgTx) error {
		if ok, err := tx.FinishHandoff(ctx, id, st, d); err != nil || !ok {
			return fmt.Errorf("finish %s: %v, %w", id, ok, err)
		}
		err := h.l.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// checkpoint signs the log as it stands and returns its size.
func (h *history) checkpoint() int64 {
	h.t.Helper()
	_, c := checkpoint(h.t, h.s, h.l, h.f.Org.ID)
	return c.Size
}

// TestVerifyCrossChecksHandoffs builds one organization per case the way the service writes them —
// handoffs created, decided, expired, cancelled, checkpoints signed in between — and then tampers with
// it as the database's owner with raw SQL. The first case is the outside review's: the last leaf (a
// decision), its hashes and the checkpoint over it deleted and the head reset to the checkpoint before,
// which leaves a tree consistent with every remaining checkpoint. VerifyAll must fail each tampered
// organization naming the handoff and the leaf, and pass the untouched one.
func TestVerifyCrossChecksHandoffs(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s, r := openAsOwner(t, dialect)
		l := newLog(t)
		type want struct {
			bad  int64
			says []string // every one must appear in the problem; none = the log verifies
		}
		cases := []struct {
			name string
			run  func(t *testing.T, h *history) want
		}{
			{"untouched", func(t *testing.T, h *history) want {
				for _, st := range []store.Status{store.StatusApproved, store.StatusDenied, store.StatusExpired, store.StatusCancelled} {
					h.finish(h.create().ID, st)
					h.checkpoint()
				}
				h.create()
				return want{bad: -1}
			}},
			{"decision cut from the tail", func(t *testing.T, h *history) want {
				ho := h.create()
				before := h.checkpoint()
				h.finish(ho.ID, store.StatusApproved)
				if h.checkpoint() != before+1 {
					t.Fatal("the decision did not add one leaf")
				}
				cutTail(t, r, h.f.Org.ID, before)
				// The log is consistent with itself and with every checkpoint left: only the records tell.
				if rep, err := l.Verify(ctx, h.s, h.f.Org.ID); err != nil || !rep.OK() || rep.Size != before {
					t.Fatalf("after the cut, Verify (the log alone): %+v, %v; want OK at %d leaves", rep, err, before)
				}
				return want{bad: before, says: []string{"handoff " + ho.ID + " is approved", "no handoff.decided leaf", "its tail looks cut"}}
			}},
			{"expiry cut from the tail", func(t *testing.T, h *history) want {
				ho := h.create()
				before := h.checkpoint()
				h.finish(ho.ID, store.StatusExpired)
				h.checkpoint()
				cutTail(t, r, h.f.Org.ID, before)
				return want{bad: before, says: []string{"handoff " + ho.ID + " is expired", "no handoff.expired leaf"}}
			}},
			{"cancellation and creation cut from the tail", func(t *testing.T, h *history) want {
				before := h.checkpoint()
				a, b := h.create(), h.create()
				h.finish(a.ID, store.StatusCancelled)
				h.checkpoint()
				cutTail(t, r, h.f.Org.ID, before)
				first := a
				if b.ID < a.ID {
					first = b
				}
				return want{bad: before, says: []string{"handoff " + first.ID, "(and 1 more handoff lacks leaves)"}}
			}},
			{"row inserted without its leaf", func(t *testing.T, h *history) want {
				ho := storetest.NewHandoff(h.f.Org.ID, h.f.Device.ID)
				size := h.checkpoint()
				if err := h.s.InOrg(ctx, h.f.Org.ID, func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, ho) }); err != nil {
					t.Fatal(err)
				}
				return want{bad: size, says: []string{"handoff " + ho.ID, "has no handoff.created leaf"}}
			}},
			{"decided row reset to pending", func(t *testing.T, h *history) want {
				ho := h.create()
				h.finish(ho.ID, store.StatusApproved)
				size := h.checkpoint()
				r.scope(t, h.f.Org.ID)
				r.exec(t, `UPDATE handoffs SET status = 'pending', decided_at = NULL WHERE org_id = ? AND id = ?`, h.f.Org.ID, ho.ID)
				return want{bad: size - 1, says: []string{"handoff " + ho.ID + " is pending but leaf 2 records it approved"}}
			}},
			{"approval rewritten as a denial", func(t *testing.T, h *history) want {
				ho := h.create()
				h.finish(ho.ID, store.StatusApproved)
				size := h.checkpoint()
				r.scope(t, h.f.Org.ID)
				r.exec(t, `UPDATE handoffs SET status = 'denied' WHERE org_id = ? AND id = ?`, h.f.Org.ID, ho.ID)
				return want{bad: size - 1, says: []string{"handoff " + ho.ID + " is denied but leaf 2 records it approved"}}
			}},
			{"handoff row deleted", func(t *testing.T, h *history) want {
				ho := h.create()
				h.checkpoint()
				r.scope(t, h.f.Org.ID)
				r.exec(t, `DELETE FROM handoffs WHERE org_id = ? AND id = ?`, h.f.Org.ID, ho.ID)
				return want{bad: 1, says: []string{"leaf 1 records handoff.created of handoff " + ho.ID + ", which does not exist"}}
			}},
		}
		wants := map[string]want{}
		names := map[string]string{}
		for _, c := range cases {
			h := newHistory(t, s, l)
			wants[l.Origin(h.f.Org.ID)], names[l.Origin(h.f.Org.ID)] = c.run(t, h), c.name
		}
		reps, err := l.VerifyAll(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != len(cases) {
			t.Fatalf("VerifyAll reported %d logs, want %d: %+v", len(reps), len(cases), reps)
		}
		for _, rep := range reps {
			w, name := wants[rep.Origin], names[rep.Origin]
			t.Logf("%s: %+v", name, rep)
			if len(w.says) == 0 {
				if !rep.OK() {
					t.Errorf("%s: want OK, got %+v", name, rep)
				}
				continue
			}
			if rep.OK() || rep.BadIndex != w.bad {
				t.Errorf("%s: want a failure at index %d, got %+v", name, w.bad, rep)
				continue
			}
			for _, say := range w.says {
				if !strings.Contains(rep.Problem, say) {
					t.Errorf("%s: the problem %q does not say %q", name, rep.Problem, say)
				}
			}
		}
	})
}

// TestVerifyWhileWriting verifies over and over while handoffs are created and decided: the
// cross-check must not mistake a handoff written between its reads for a missing or stray leaf.
func TestVerifyWhileWriting(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		h := newHistory(t, s, l)
		done := make(chan struct{})
		var writes int
		go func() {
			defer close(done)
			for i := 0; i < 60; i++ {
				ho := storetest.NewHandoff(h.f.Org.ID, h.f.Device.ID)
				err := s.InOrg(ctx, h.f.Org.ID, func(tx store.OrgTx) error {
					if err := tx.InsertHandoff(ctx, ho); err != nil {
						return err
					}
					err := l.Append(ctx, tx, audit.Event{Type: audit.HandoffCreated, Actor: audit.Actor{Kind: "device", ID: ho.DeviceID},
						Subject: audit.Subject{Kind: "handoff", ID: ho.ID}, Channel: "api"})
					return err
				})
				if err == nil {
					err = s.InOrg(ctx, h.f.Org.ID, func(tx store.OrgTx) error {
						if _, err := tx.FinishHandoff(ctx, ho.ID, store.StatusExpired, store.Decision{ByKind: store.ActorSystem, ByID: "expiry", Channel: "system", DecidedAt: time.Now()}); err != nil {
							return err
						}
						err := l.Append(ctx, tx, audit.Event{Type: audit.HandoffExpired, Actor: audit.Actor{Kind: "system", ID: "expiry"},
							Subject: audit.Subject{Kind: "handoff", ID: ho.ID}, Channel: "system", Outcome: "expired"})
						return err
					})
				}
				if err != nil {
					t.Errorf("write %d: %v", i, err)
					return
				}
				writes++
			}
		}()
		verifies := 0
		for running := true; running; verifies++ {
			select {
			case <-done:
				running = false
			default:
			}
			rep, err := l.VerifyOrg(ctx, s, h.f.Org.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("verify %d while writing: %+v", verifies, rep)
			}
		}
		t.Logf("%d verifications during %d handoffs written", verifies, writes)
	})
}
