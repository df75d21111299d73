package audit

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

// CheckpointArgs is the periodic job that signs a fresh checkpoint for every log that grew, so
// witnesses polling GET /v1/audit/checkpoint see new entries committed within a minute.
type CheckpointArgs struct{}

// Kind implements river.JobArgs.
func (CheckpointArgs) Kind() string { return "audit.checkpoint" }

type checkpointWorker struct {
	river.WorkerDefaults[CheckpointArgs]
	l *Log
	s store.Store
}

// Timeout: signing every grown log of a large instance takes a while.
func (w *checkpointWorker) Timeout(*river.Job[CheckpointArgs]) time.Duration { return 2 * time.Minute }

func (w *checkpointWorker) Work(ctx context.Context, _ *river.Job[CheckpointArgs]) error {
	_, err := w.l.CheckpointAll(ctx, w.s)
	return err
}

// RegisterWorkers adds the checkpoint worker.
func (l *Log) RegisterWorkers(w *river.Workers, s store.Store) {
	river.AddWorker(w, &checkpointWorker{l: l, s: s})
}

// PeriodicJobs schedules checkpointing every interval.
func PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return CheckpointArgs{}, &river.InsertOpts{Queue: store.QueueUpkeep}
		},
		&river.PeriodicJobOpts{RunOnStart: true})}
}
