package session

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

// SweepArgs is the periodic job that deletes expired sessions, so the table holds only live ones.
type SweepArgs struct{}

// Kind implements river.JobArgs. The name predates this package; queued jobs carry it.
func (SweepArgs) Kind() string { return "sessions.sweep" }

// Sweep deletes the sessions that have expired and says how many there were.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	var n int
	err := s.store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		if n, err = tx.DeleteExpiredSessions(ctx, s.now()); err != nil {
			return err
		}
		_, err = tx.DeleteExpiredChallenges(ctx, s.now()) // unfinished two-step sign-ins
		return err
	})
	return n, err
}

type sweeper struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

// Timeout: one DELETE, but of every expired session since the last sweep.
func (w *sweeper) Timeout(*river.Job[SweepArgs]) time.Duration { return 2 * time.Minute }

func (w *sweeper) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	n, err := w.s.Sweep(ctx)
	if err == nil && n > 0 {
		w.s.log.InfoContext(ctx, "expired sessions deleted", "count", n)
	}
	return err
}

// RegisterWorkers adds the sweep worker.
func (s *Service) RegisterWorkers(w *river.Workers) { river.AddWorker(w, &sweeper{s: s}) }

// PeriodicJobs are the service's periodic jobs: the hourly sweep.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) {
			return SweepArgs{}, &river.InsertOpts{Queue: store.QueueUpkeep}
		}, nil)}
}
