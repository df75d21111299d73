package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/storetest"
)

// TestDeviceLookupRestoresScope: ony_device_by_token takes the system scope for its own query only.
// Called inside an org's transaction it finds the device and hands the transaction back in the org's
// scope, so the next statement sees that org's rows alone; called on its own it leaves no scope behind
// on the connection.
func TestDeviceLookupRestoresScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url)
	a, b := storetest.NewFixture(t, s, "a"), storetest.NewFixture(t, s, "b")
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })

	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT set_config('ony.org_id', $1, true)`, b.Org.ID); err != nil {
		t.Fatal(err)
	}
	var org string
	if err := tx.QueryRow(ctx, `SELECT org_id FROM ony_device_by_token($1)`, a.Device.TokenHash).Scan(&org); err != nil || org != a.Org.ID {
		t.Fatalf("lookup from b's transaction: org %q, %v", org, err)
	}
	var n int
	var scope string
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(current_setting('ony.scope', true), '') FROM devices`).Scan(&n, &scope); err != nil {
		t.Fatal(err)
	}
	if n != 1 || scope != "" {
		t.Fatalf("after the lookup b's transaction sees %d devices, scope %q; want 1 and none", n, scope)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if err := c.QueryRow(ctx, `SELECT org_id FROM ony_device_by_token($1)`, b.Device.TokenHash).Scan(&org); err != nil || org != b.Org.ID {
		t.Fatalf("lookup on its own: org %q, %v", org, err)
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM devices`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after a lookup on its own the connection sees %d devices (%v), want none", n, err)
	}
}
