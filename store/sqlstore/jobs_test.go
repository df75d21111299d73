package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
)

type laterArgs struct{}

func (laterArgs) Kind() string { return "test.later" }

// A job due later is stored available with its scheduled_at, so workers take it when it is due
// instead of after River's scheduler next moves it from scheduled (every 5 s, on the leader).
func TestEnqueueFutureJobIsAvailable(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			ctx := context.Background()
			due := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			if err := s.InOrg(ctx, "org-later", func(tx store.OrgTx) error {
				return tx.Enqueue(ctx, laterArgs{}, &river.InsertOpts{ScheduledAt: due})
			}); err != nil {
				t.Fatal(err)
			}
			var state string
			var at time.Time
			if err := sqlstore.DB(s).QueryRowContext(ctx, `SELECT state, scheduled_at FROM river_job WHERE kind = 'test.later'`).Scan(&state, &at); err != nil {
				t.Fatal(err)
			}
			if state != "available" || !at.Equal(due) {
				t.Fatalf("state %s at %s; want available at %s", state, at, due)
			}
		})
	}
}
