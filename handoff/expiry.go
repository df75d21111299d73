package handoff

// Expiry sweep (issue 12). A handoff used to carry its own scheduled expiry job, inserted in the
// create's transaction: one more row written per create, and one more job to promote, fetch and
// complete later. Instead, the elected leader schedules one sweep a second, which ends every pending
// handoff whose expires_at has passed, each through the same path as before (Expire: the audit leaf,
// the escalator's Finished, the callback job, the waiters' wake-up). A handoff therefore expires at
// most about ExpiryInterval (plus the job runner's fetch, 200 ms by default, and the sweep's own work)
// after its deadline, and exactly once: the final state is a conditional update, so a second sweep
// (or a person deciding at the same moment) finds it final and does nothing. A decision that comes
// after expires_at but before the sweep is still refused as expired (finish), so the deadline is the
// handoff's, never the sweep's.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
)

// ExpiryInterval is how often the sweep runs.
const ExpiryInterval = time.Second

const (
	// expiryBatch is how many due handoffs one read of the sweep takes.
	expiryBatch = 500
	// expiryParallel is how many of them it expires at once (each is its own transaction).
	expiryParallel = 8
)

// ExpireDue ends every pending handoff, in every organization, whose expires_at is at or before
// the service's clock, and returns how many this call ended. Handoffs that end otherwise meanwhile (decided,
// cancelled, expired by another sweep, erased) are skipped. An error stops the sweep after the batch
// it happened in; what it ended stays ended.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	for {
		now := s.clock()
		var due []store.HandoffRef
		err := s.store.ReadSystem(ctx, func(tx store.SystemTx) (err error) {
			due, err = tx.DueHandoffs(ctx, now, expiryBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("handoff: expiry sweep: %w", err)
		}
		n, err := s.expireAll(ctx, due)
		total += n
		if err != nil || len(due) < expiryBatch {
			return total, err
		}
		// A full batch: more may be due. The ones this batch ended have left the index.
	}
}

// expireAll expires refs, a few at a time, and returns how many it ended.
func (s *Service) expireAll(ctx context.Context, refs []store.HandoffRef) (int, error) {
	var (
		mu    sync.Mutex
		ended int
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, expiryParallel)
	)
	for _, r := range refs {
		if ctx.Err() != nil {
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			_, err := s.expireOnce(ctx, r.OrgID, r.ID, "expiry", false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ended++
			case isProblemCode(err, "already_final"), isNotFound(err), errors.Is(err, errNotDue),
				isProblemCode(err, "organization_erased"), errors.Is(err, audit.ErrSealed):
				// Ended otherwise, or erased (or being erased), since it was listed; or not due on this
				// clock after all (the next sweep takes it).
			default:
				errs = append(errs, fmt.Errorf("handoff: expire %s: %w", r.ID, err))
			}
		}()
	}
	wg.Wait()
	return ended, errors.Join(append(errs, ctx.Err())...)
}

// ExpiryArgs is the periodic job that runs the sweep.
type ExpiryArgs struct{}

// Kind implements river.JobArgs.
func (ExpiryArgs) Kind() string { return "handoff.expiry_sweep" }

type expiryWorker struct {
	river.WorkerDefaults[ExpiryArgs]
	s *Service
}

// Timeout: a backlog (after downtime) is worked off in batches; the next run goes on where this
// one stopped.
func (w *expiryWorker) Timeout(*river.Job[ExpiryArgs]) time.Duration { return time.Minute }

func (w *expiryWorker) Work(ctx context.Context, _ *river.Job[ExpiryArgs]) error {
	n, err := w.s.ExpireDue(ctx)
	if n > 0 {
		w.s.log.DebugContext(ctx, "expiry sweep", "expired", n)
	}
	return err
}

// ExpiryPeriodicJobs schedules the sweep every ExpiryInterval, and at start. Periodic jobs are
// enqueued by the elected leader only, so one sweep runs at a time across replicas (one that outlasts
// its interval overlaps the next harmlessly: the second finds the first's handoffs final).
func ExpiryPeriodicJobs() []*river.PeriodicJob { return []*river.PeriodicJob{expiryJob} }

// The constructor sets ScheduledAt to the moment of insertion: River would otherwise schedule it at
// its nominal time, up to 100 ms ahead, and a scheduled job waits for promotion.
var expiryJob = river.NewPeriodicJob(river.PeriodicInterval(ExpiryInterval),
	func() (river.JobArgs, *river.InsertOpts) {
		return ExpiryArgs{}, &river.InsertOpts{ScheduledAt: time.Now(), MaxAttempts: 1, Queue: store.QueueUpkeep}
	},
	&river.PeriodicJobOpts{RunOnStart: true})

// IsExpiryJob reports whether j is the sweep's periodic job.
func IsExpiryJob(j *river.PeriodicJob) bool { return j == expiryJob }
