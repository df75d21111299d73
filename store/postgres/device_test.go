package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/storetest"
)

// TestTokenLookupsRestoreScope: ony_device_by_token and ony_session_by_token take the system scope for
// their own query only. Called inside an org's transaction they find the other org's row and hand the
// transaction back in the org's scope, so the next statement sees that org's rows alone; called on
// their own they leave no scope behind on the connection.
func TestTokenLookupsRestoreScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url)
	a, b := storetest.NewFixture(t, s, "a"), storetest.NewFixture(t, s, "b")
	for _, tc := range []struct {
		lookup, table string
		hash          func(storetest.Fixture) []byte
	}{
		{"ony_device_by_token", "devices", func(f storetest.Fixture) []byte { return f.Device.TokenHash }},
		{"ony_session_by_token", "sessions", func(f storetest.Fixture) []byte { return f.Session.IDHash }},
	} {
		t.Run(tc.lookup, func(t *testing.T) {
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			find := `SELECT org_id FROM ` + tc.lookup + `($1)`

			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SELECT set_config('ony.org_id', $1, true)`, b.Org.ID); err != nil {
				t.Fatal(err)
			}
			var org string
			if err := tx.QueryRow(ctx, find, tc.hash(a)).Scan(&org); err != nil || org != a.Org.ID {
				t.Fatalf("lookup from b's transaction: org %q, %v", org, err)
			}
			var n int
			var scope string
			if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(current_setting('ony.scope', true), '') FROM `+tc.table).Scan(&n, &scope); err != nil {
				t.Fatal(err)
			}
			if n != 1 || scope != "" {
				t.Fatalf("after the lookup b's transaction sees %d %s, scope %q; want 1 and none", n, tc.table, scope)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}

			if err := c.QueryRow(ctx, find, tc.hash(b)).Scan(&org); err != nil || org != b.Org.ID {
				t.Fatalf("lookup on its own: org %q, %v", org, err)
			}
			if err := c.QueryRow(ctx, `SELECT count(*) FROM `+tc.table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("after a lookup on its own the connection sees %d %s (%v), want none", n, tc.table, err)
			}
		})
	}
}
