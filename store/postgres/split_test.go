package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/storetest"
)

func openSplit(t *testing.T) (*sql.DB, store.Store) {
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
	return db, s
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
			_, err := l.Append(ctx, tx, audit.Event{Type: audit.DeviceCreated, Actor: audit.Actor{Kind: "system", ID: "t"},
				Subject: audit.Subject{Kind: "device", ID: a.Device.ID}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE audit_leaves SET data = 'x'`,
		`DELETE FROM audit_leaves`,
		`DELETE FROM audit_hashes`,
		`TRUNCATE audit_leaves`,
		`ALTER TABLE audit_leaves DISABLE TRIGGER USER`,
		`DROP TRIGGER audit_leaves_guard ON audit_leaves`,
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
	if _, err := db.ExecContext(ctx, `GRANT UPDATE, DELETE, TRUNCATE ON audit_leaves TO CURRENT_USER`); err != nil {
		t.Logf("self-grant refused outright: %v", err)
	}
	for _, priv := range []string{"UPDATE", "DELETE", "TRUNCATE"} {
		var has bool
		if err := db.QueryRowContext(ctx, `SELECT has_table_privilege(current_user, 'audit_leaves', $1)`, priv).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has {
			t.Errorf("the runtime role holds %s on audit_leaves", priv)
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
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_leaves WHERE org_id = $1`, a.Org.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d leaves left after erasure", left)
	}
}
