package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/storetest"
)

func openSplit(t *testing.T) (*sql.DB, store.Store) {
	t.Helper()
	_, db, s := openSplitURL(t)
	return db, s
}

func openSplitURL(t *testing.T) (string, *sql.DB, store.Store) {
	t.Helper()
	appURL, ownerURL := testdb.PostgresSplitURLs(t)
	s, err := postgres.Open(context.Background(), postgres.Options{URL: appURL, MigrateURL: ownerURL, MaxConns: 5}, testdb.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("pgx", appURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return appURL, db, s
}

// TestSplitRolesBehaviour runs the whole store suite with migrations done by an owner role and
// requests served by a role that owns nothing.
func TestSplitRolesBehaviour(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { _, s := openSplit(t); return s })
}

// TestSplitRolesCannotRewriteHistory: the runtime role can append to the audit log but cannot change
// or delete it, cannot grant itself the right to, and cannot switch the guard triggers off; erasing a
// whole organization still works through its own path.
func TestSplitRolesCannotRewriteHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, s := openSplit(t)
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(keys, "ony-test", nil, nil)
	a := storetest.NewFixture(t, s, "a")
	for i := 0; i < 3; i++ {
		err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			return l.Append(ctx, tx, audit.Event{Type: audit.DeviceCreated, Actor: audit.Actor{Kind: "system", ID: "t"},
				Subject: audit.Subject{Kind: "device", ID: a.Device.ID}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The runtime role sequences (inserts leaves, moves the head forward, dequeues).
	if n, err := l.Sequence(ctx, s, a.Org.ID); err != nil || n != 3 {
		t.Fatalf("sequence: %d, %v", n, err)
	}
	for _, q := range []string{
		`UPDATE audit_bundles SET data = 'x'`,
		`UPDATE audit_bundles SET data = data || 'x'`,
		`UPDATE audit_queue SET data = 'x'`,
		`DELETE FROM audit_bundles`,
		`DELETE FROM audit_tiles`,
		`UPDATE audit_tiles SET data = substr(data, 1, 32)`,
		`TRUNCATE audit_bundles`,
		`ALTER TABLE audit_bundles DISABLE TRIGGER USER`,
		`DROP TRIGGER audit_bundles_guard ON audit_bundles`,
		`CREATE TABLE sneaky (x int)`,
		`INSERT INTO ony_schema_migrations (version, name, applied_at) VALUES (999, 'x', 'x')`,
	} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, a.Org.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, q); err == nil {
			t.Errorf("the runtime role could run %q", q)
		}
		tx.Rollback()
	}
	// A GRANT by a role without the grant option "succeeds" with a warning and grants nothing; what
	// matters is the privilege afterwards.
	// (UPDATE on bundles is the sequencer's, bounded by the guard the role cannot drop.)
	if _, err := db.ExecContext(ctx, `GRANT DELETE, TRUNCATE ON audit_bundles TO CURRENT_USER`); err != nil {
		t.Logf("self-grant refused outright: %v", err)
	}
	if _, err := db.ExecContext(ctx, `GRANT UPDATE ON audit_checkpoints TO CURRENT_USER`); err != nil {
		t.Logf("self-grant refused outright: %v", err)
	}
	for _, p := range [][2]string{{"audit_bundles", "DELETE"}, {"audit_bundles", "TRUNCATE"}, {"audit_checkpoints", "UPDATE"}} {
		var has bool
		if err := db.QueryRowContext(ctx, `SELECT has_table_privilege(current_user, $1, $2)`, p[0], p[1]).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has {
			t.Errorf("the runtime role holds %s on %s", p[1], p[0])
		}
	}
	rep, err := l.Verify(ctx, s, a.Org.ID)
	if err != nil || !rep.OK() || rep.Size != 3 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if err := l.EraseOrg(ctx, s, a.Org.ID, audit.Actor{Kind: "system", ID: "t"}); err != nil {
		t.Fatalf("erasure through its own path: %v", err)
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_bundles WHERE org_id = $1`, a.Org.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d leaves left after erasure", left)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_queue WHERE org_id = $1`, a.Org.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d queued records left after erasure", left)
	}
}

// TestSplitRolesEscalationGrants: the runtime role can write what escalation writes and no more — ladder
// versions are never edited, sends and tokens never deleted — and erasing an organization still takes
// them all, by cascade.
func TestSplitRolesEscalationGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	appURL, db, s := openSplitURL(t)
	for _, c := range []struct {
		table, priv string
		want        bool
	}{
		{"ladders", "SELECT", true}, {"ladders", "INSERT", true}, {"ladders", "UPDATE", false}, {"ladders", "DELETE", false},
		{"ladders", "TRUNCATE", false},
		{"escalation_sends", "SELECT", true}, {"escalation_sends", "INSERT", true}, {"escalation_sends", "UPDATE", true},
		{"escalation_sends", "DELETE", false}, {"escalation_sends", "TRUNCATE", false},
		{"decision_tokens", "SELECT", true}, {"decision_tokens", "INSERT", true}, {"decision_tokens", "UPDATE", true},
		{"decision_tokens", "DELETE", false}, {"decision_tokens", "TRUNCATE", false},
	} {
		var has bool
		if err := db.QueryRowContext(ctx, `SELECT has_table_privilege(current_user, $1, $2)`, c.table, c.priv).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has != c.want {
			t.Errorf("runtime role %s on %s = %v, want %v", c.priv, c.table, has, c.want)
		}
	}
	a := storetest.NewFixture(t, s, "a")
	err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		n := time.Now()
		_, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: a.Handoff.ID, Key: "k", Channel: "console", Target: a.User.ID, CreatedAt: n})
		return errors.Join(err,
			tx.PutLadder(ctx, store.LadderVersion{Name: "default", Version: 1, Source: []byte("x"), CreatedBy: a.User.ID, CreatedAt: n}),
			tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: []byte(a.Org.ID), HandoffID: a.Handoff.ID, UserID: a.User.ID,
				Channel: "sms", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, a.Org.ID) }); err != nil {
		t.Fatalf("erasure with escalation rows: %v", err)
	}
	superDB, err := sql.Open("pgx", testdb.SuperuserURL(appURL))
	if err != nil {
		t.Fatal(err)
	}
	defer superDB.Close()
	for _, table := range []string{"ladders", "escalation_sends", "decision_tokens"} {
		var n int
		if err := superDB.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE org_id = $1`, a.Org.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows of the erased org remain", table, n)
		}
	}
}
