package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
)

type laterArgs struct{}

func (laterArgs) Kind() string { return "test.later" }

type soonArgs struct{}

func (soonArgs) Kind() string { return "test.soon" }

// A job due within the horizon is stored available with its scheduled_at, so workers take it when it
// is due instead of after River's scheduler next moves it from scheduled (every 5 s, on the leader).
// A job due later is stored scheduled, so River's fetch does not walk it on every look, until a
// promoter pass brings it within the horizon.
func TestEnqueueFutureJobIsAvailable(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			ctx := context.Background()
			soon := time.Now().Add(time.Second).UTC().Truncate(time.Millisecond)
			later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			if err := s.InOrg(ctx, "org-later", func(tx store.OrgTx) error {
				return errors.Join(tx.Enqueue(ctx, soonArgs{}, &river.InsertOpts{ScheduledAt: soon}),
					tx.Enqueue(ctx, laterArgs{}, &river.InsertOpts{ScheduledAt: later}))
			}); err != nil {
				t.Fatal(err)
			}
			check := func(kind, want string, due time.Time) {
				t.Helper()
				var state string
				var at time.Time
				if err := sqlstore.DB(s).QueryRowContext(ctx, `SELECT state, scheduled_at FROM river_job WHERE kind = '`+kind+`'`).Scan(&state, &at); err != nil {
					t.Fatal(err)
				}
				if state != want || !at.Equal(due) {
					t.Fatalf("%s: state %s at %s; want %s at %s", kind, state, at, want, due)
				}
			}
			check("test.soon", "available", soon)
			check("test.later", "scheduled", later)
			// A pass whose horizon ends before the job is due leaves it; one that reaches it moves it.
			if err := s.PromoteOnce(ctx, later.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			check("test.later", "scheduled", later)
			if err := s.PromoteOnce(ctx, later); err != nil {
				t.Fatal(err)
			}
			check("test.later", "available", later)
		})
	}
}
