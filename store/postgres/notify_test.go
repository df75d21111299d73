package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

type notifyArgs struct{}

func (notifyArgs) Kind() string { return "test.notify" }

// listenInserts listens for River's insert notifications in the schema url's connections use.
func listenInserts(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	var schema string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `LISTEN `+pgx.Identifier{schema + ".river_insert"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return c
}

func nextInsert(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := c.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no insert notification: %v", err)
	}
	return n.Payload
}

// TestJobNotifiedAfterCommit: a job due now is announced to listening workers once its transaction
// commits, never from inside it (the dialect's insert sends nothing), and never for a rollback.
// PostgreSQL delivers notifications in commit order, so an unwanted one would arrive first.
func TestJobNotifiedAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url)
	f := storetest.NewFixture(t, s, "a")
	l := listenInserts(t, url)
	var d postgres.Dialect

	// The dialect's insert alone, committed: no notification.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := d.InsertJob(ctx, tx, sqlstore.Job{Kind: "test.notify", Args: []byte(`{}`), MaxAttempts: 1, Priority: 1,
		Queue: "inside", CreatedAt: now, ScheduledAt: now, State: "available"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := d.NotifyJobs(ctx, s.DB(), []string{"marker"}); err != nil {
		t.Fatal(err)
	}
	if got := nextInsert(t, l); got != `{"queue": "marker"}` {
		t.Fatalf("first notification %s; want the marker's (the insert notified by itself)", got)
	}

	// Through the store: a rolled-back enqueue is never announced, a committed one is.
	errRollback := errors.New("roll back")
	err = s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if err := tx.Enqueue(ctx, notifyArgs{}, &river.InsertOpts{Queue: "rolledback"}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	err = s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return tx.Enqueue(ctx, notifyArgs{}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := nextInsert(t, l); got != `{"queue": "default"}` {
		t.Fatalf("first notification %s; want the committed job's queue", got)
	}
}
