package server

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

// SessionSweepArgs is the periodic job that deletes expired sessions, so the table holds only live ones.
type SessionSweepArgs struct{}

// Kind implements river.JobArgs.
func (SessionSweepArgs) Kind() string { return "sessions.sweep" }

type sessionSweeper struct {
	river.WorkerDefaults[SessionSweepArgs]
	s *Server
}

func (w *sessionSweeper) Work(ctx context.Context, _ *river.Job[SessionSweepArgs]) error {
	var n int
	err := w.s.store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		n, err = tx.DeleteExpiredSessions(ctx, w.s.now())
		return err
	})
	if err == nil && n > 0 {
		w.s.log.InfoContext(ctx, "expired sessions deleted", "count", n)
	}
	return err
}

// RegisterWorkers adds the server's periodic workers.
func (s *Server) RegisterWorkers(w *river.Workers) { river.AddWorker(w, &sessionSweeper{s: s}) }

// PeriodicJobs are the server's periodic jobs.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return SessionSweepArgs{}, nil }, nil)}
}
