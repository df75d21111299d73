package handoff

// Payload retention (issue 17). The attached payload (a diff, a log, a command) is the most sensitive
// thing Ony keeps, and nobody needs it once the handoff is decided and some time has passed. A daily
// sweep scrubs it off handoffs older than the organization's window and records, per organization,
// one audit leaf with how many it scrubbed. The handoff itself — its title, risk, options, decision,
// the payload's kind and size — and the audit log stay.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
)

// Retention scrubs payloads past their window. The window of an organization is its own setting
// (payload_retention_days) when it has one, otherwise the instance's default (retention.payload_days);
// 0 in both means payloads are kept.
type Retention struct {
	Store store.Store
	Audit *audit.Log
	// DefaultDays applies to organizations that set no window of their own; 0 = keep.
	DefaultDays int
	Logger      *slog.Logger
	// Clock is injectable for tests; nil means time.Now.
	Clock func() time.Time
	// Batch is how many handoffs one statement scrubs (default 500); PerTx how many one transaction
	// scrubs at most (default 20,000), so that a first sweep over a large backlog does not hold one
	// transaction (and on SQLite the write lock) for long. Each transaction records its own leaf, so an
	// org with more than PerTx payloads due at once gets one leaf per PerTx.
	Batch, PerTx int
}

// RetentionResult is one organization's part of a sweep.
type RetentionResult struct {
	OrgID string `json:"org_id"`
	// Days is the window applied; 0 means the org keeps its payloads (nothing was looked at).
	Days int `json:"days"`
	// Scrubbed is how many payloads were scrubbed, or with a dry run would be.
	Scrubbed int `json:"scrubbed"`
}

// retentionActor is who the sweep's leaves name: the system, not a person.
var retentionActor = audit.Actor{Kind: string(store.ActorSystem), ID: "retention"}

// WindowDays is the retention window that applies to o, in days; 0 = keep.
func (r *Retention) WindowDays(o store.Org) int {
	if o.PayloadRetentionDays > 0 {
		return o.PayloadRetentionDays
	}
	return max(r.DefaultDays, 0)
}

func (r *Retention) now() time.Time {
	if r.Clock != nil {
		return r.Clock().UTC()
	}
	return time.Now().UTC()
}

// Sweep scrubs (or, with dryRun, counts) the payloads due in every organization, and returns each
// organization's result, in id order. An organization that fails does not stop the others; the
// errors are returned together.
func (r *Retention) Sweep(ctx context.Context, dryRun bool) ([]RetentionResult, error) {
	var ids []string
	if err := r.Store.ReadSystem(ctx, func(tx store.SystemTx) (err error) {
		ids, err = tx.OrgIDs(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("retention: list organizations: %w", err)
	}
	now := r.now()
	out := make([]RetentionResult, 0, len(ids))
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, err)...)
		}
		res, err := r.sweepOrg(ctx, id, now, dryRun)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: org %s: %w", id, err))
			continue
		}
		out = append(out, res)
	}
	return out, errors.Join(errs...)
}

// SweepOrg is Sweep for one organization.
func (r *Retention) SweepOrg(ctx context.Context, orgID string, dryRun bool) (RetentionResult, error) {
	return r.sweepOrg(ctx, orgID, r.now(), dryRun)
}

func (r *Retention) sweepOrg(ctx context.Context, orgID string, now time.Time, dryRun bool) (RetentionResult, error) {
	res := RetentionResult{OrgID: orgID}
	if dryRun {
		err := r.Store.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
			o, err := tx.Org(ctx)
			if err != nil {
				return err
			}
			if res.Days = r.WindowDays(o); res.Days == 0 {
				return nil
			}
			res.Scrubbed, err = tx.CountScrubbablePayloads(ctx, cutoff(now, res.Days))
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			err = nil // erased since it was listed
		}
		return res, err
	}
	batch, perTx := r.Batch, r.PerTx
	if batch <= 0 {
		batch = 500
	}
	if perTx <= 0 {
		perTx = 20000
	}
	for {
		n, done := 0, false
		err := r.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
			n, done = 0, false
			o, err := tx.Org(ctx)
			if err != nil {
				return err
			}
			if res.Days = r.WindowDays(o); res.Days == 0 {
				done = true
				return nil
			}
			before := cutoff(now, res.Days)
			for n < perTx {
				limit := min(batch, perTx-n)
				k, err := tx.ScrubPayloads(ctx, before, limit)
				if err != nil {
					return err
				}
				n += k
				if k < limit {
					done = true
					break
				}
			}
			if n == 0 {
				return nil // nothing scrubbed, nothing to record
			}
			// The leaf commits with the scrub or not at all. It names the organization, how many and
			// the window: no handoff ids, nothing of what was removed.
			return r.Audit.Append(ctx, tx, audit.Event{Type: audit.PayloadScrubbed, At: now, Actor: retentionActor,
				Subject: audit.Subject{Kind: "org", ID: orgID}, Channel: "system",
				Details: &audit.Details{Count: int64(n), Days: res.Days}})
		})
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, audit.ErrSealed):
			return res, nil // erased, or being erased, since it was listed: its payloads go with it
		case err != nil:
			return res, err
		}
		res.Scrubbed += n
		if done {
			break
		}
	}
	if res.Scrubbed > 0 && r.Logger != nil {
		r.Logger.InfoContext(ctx, "payloads scrubbed by retention", "org", orgID, "count", res.Scrubbed, "days", res.Days)
	}
	return res, nil
}

// cutoff is the creation time before which a handoff's payload is past a window of days.
func cutoff(now time.Time, days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }

// PayloadRemoved reports whether h, as read, had a payload that retention scrubbed: its kind and size
// are still recorded, its sealed content is gone.
func PayloadRemoved(h store.Handoff) bool { return h.PayloadKind != "" && !h.PayloadKept }

// RetentionArgs is the daily periodic job that runs the sweep.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "handoff.payload_retention" }

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	r *Retention
}

// Timeout: a first sweep after retention is turned on may scrub a large backlog.
func (w *retentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return 30 * time.Minute }

func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	_, err := w.r.Sweep(ctx, false)
	return err
}

// RegisterWorkers adds the sweep's worker.
func (r *Retention) RegisterWorkers(w *river.Workers) { river.AddWorker(w, &retentionWorker{r: r}) }

// RetentionInterval is how often the sweep runs.
const RetentionInterval = 24 * time.Hour

// RetentionPeriodicJobs schedules the sweep daily, and once at start: the schedule restarts with the
// process, so without the run at start an instance restarted more often than daily would never sweep.
// Periodic jobs are enqueued by the elected leader only, so it runs once across replicas; a second run
// finds nothing to scrub and records nothing.
func RetentionPeriodicJobs() []*river.PeriodicJob { return []*river.PeriodicJob{retentionJob} }

// River reads a periodic job's schedule and constructor and keeps its own copy, so one value serves
// every client in the process; IsRetentionJob tells it apart (River's fields are unexported).
var retentionJob = river.NewPeriodicJob(river.PeriodicInterval(RetentionInterval),
	func() (river.JobArgs, *river.InsertOpts) {
		return RetentionArgs{}, &river.InsertOpts{Queue: store.QueueUpkeep}
	},
	&river.PeriodicJobOpts{RunOnStart: true})

// IsRetentionJob reports whether j is the sweep's periodic job.
func IsRetentionJob(j *river.PeriodicJob) bool { return j == retentionJob }
