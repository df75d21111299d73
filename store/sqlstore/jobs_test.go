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

// TestJobPoolWaitsForTheWriteTurn: on SQLite the job runner's pool takes the store's write turn, so a
// promotion pass (one of River's kind of writes outside the store's transactions) waits while a
// writer holds the turn, and runs once it is given back; the store's own writes wait likewise.
func TestJobPoolWaitsForTheWriteTurn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testdb.Open(t, "sqlite")
	release, err := s.WriteTurn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	promoted, wrote := make(chan error, 1), make(chan error, 1)
	go func() { promoted <- s.PromoteOnce(ctx, time.Now()) }()
	go func() {
		const org = "8f0e7c2a-5b1d-4c3e-9a6f-2d4b8e1c7a90"
		wrote <- s.InOrg(ctx, org, func(tx store.OrgTx) error {
			return tx.CreateOrg(ctx, store.Org{ID: org, Name: "Turn", MaxTimeout: time.Hour, CreatedAt: time.Now()})
		})
	}()
	// Neither may finish while the turn is held; a wrong pool would finish well within this.
	select {
	case err := <-promoted:
		t.Fatalf("the promotion ran while the write turn was held (%v)", err)
	case err := <-wrote:
		t.Fatalf("a store write ran while the write turn was held (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-promoted; err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

type busyArgs struct{}

func (busyArgs) Kind() string { return "test.busy" }

type busyWorker struct {
	river.WorkerDefaults[busyArgs]
	started chan struct{}
	release chan struct{}
}

func (w *busyWorker) Work(ctx context.Context, _ *river.Job[busyArgs]) error {
	w.started <- struct{}{}
	select {
	case <-w.release:
	case <-ctx.Done():
	}
	return nil
}

type upkeepArgs struct{}

func (upkeepArgs) Kind() string { return "test.upkeep" }

type upkeepWorker struct {
	river.WorkerDefaults[upkeepArgs]
	ran chan struct{}
}

func (w *upkeepWorker) Work(context.Context, *river.Job[upkeepArgs]) error {
	select {
	case w.ran <- struct{}{}:
	default:
	}
	return nil
}

// TestUpkeepBesideABacklog: a periodic job in the upkeep queue runs while every worker of the default
// queue is busy and more default jobs wait behind them (a backlog of rungs must not hold an expiry
// sweep back).
func TestUpkeepBesideABacklog(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s := testdb.Open(t, d)
			busy := &busyWorker{started: make(chan struct{}, 4), release: make(chan struct{})}
			up := &upkeepWorker{ran: make(chan struct{}, 1)}
			workers := river.NewWorkers()
			river.AddWorker(workers, busy)
			river.AddWorker(workers, up)
			if err := s.InOrg(ctx, "org-busy", func(tx store.OrgTx) error {
				return errors.Join(tx.Enqueue(ctx, busyArgs{}, nil), tx.Enqueue(ctx, busyArgs{}, nil))
			}); err != nil {
				t.Fatal(err)
			}
			upkeep := river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) {
					return upkeepArgs{}, &river.InsertOpts{Queue: store.QueueUpkeep}
				}, &river.PeriodicJobOpts{RunOnStart: true})
			if err := s.StartJobs(ctx, workers, store.JobsConfig{Workers: 1, Periodic: []*river.PeriodicJob{upkeep}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				close(busy.release)
				_ = s.StopJobs(context.Background())
			})
			select {
			case <-busy.started: // the one default worker is taken, and a second busy job waits
			case <-ctx.Done():
				t.Fatal("the default queue's job never started")
			}
			select {
			case <-up.ran:
			case <-ctx.Done():
				t.Fatal("the upkeep job did not run while the default queue was busy")
			}
		})
	}
}
