package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/storetest"
)

// TestRowLevelSecurity checks the backstop on its own: raw SQL as the runtime role, with no org filter
// in the query, sees only the rows of the org the transaction is bound to.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url)
	a := storetest.NewFixture(t, s, "a")
	b := storetest.NewFixture(t, s, "b")

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var super, bypass bool
	if err := db.QueryRowContext(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("runtime role must not bypass RLS: superuser=%v bypassrls=%v", super, bypass)
	}

	count := func(setting, table string) (n int) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if setting != "" {
			if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, setting); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range []string{"orgs", "users", "devices", "sessions", "handoffs"} {
		if n := count("", table); n != 0 {
			t.Errorf("%s: %d rows visible with no org bound, want 0", table, n)
		}
		if n := count(a.Org.ID, table); n != 1 {
			t.Errorf("%s: %d rows visible to org A, want 1", table, n)
		}
	}
	// Writing a row for another org is refused by the policy's WITH CHECK.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, a.Org.ID); err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE handoffs SET title = 'x' WHERE org_id = $1`, b.Org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 0 {
		t.Fatalf("UPDATE under org A's scope changed %d of B's handoffs", n)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES ('evil', 'x', 1, now())`); err == nil {
		t.Fatal("inserting another org's row under org A's scope succeeded")
	}
}
