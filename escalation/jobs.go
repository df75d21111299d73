package escalation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/store"
)

// Job arguments. Each names the handoff and the rung, so River's retry of one job repeats only it.
// The end of a ladder is the handoff service's own expiry job (handoff.ExpireArgs with Ladder set).

// StepArgs runs one rung: it fans out to the rung's targets and schedules the next rung.
type StepArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
	Climb     int    `json:"climb"`
	Step      int    `json:"step"`
}

// Kind implements river.JobArgs.
func (StepArgs) Kind() string { return "escalation.step" }

// SendArgs reaches one target on one channel for one attempt.
type SendArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
	Climb     int    `json:"climb"`
	Step      int    `json:"step"`
	Channel   string `json:"channel"`
	Target    string `json:"target"` // a user id, or a team target such as webhook:teams
	Attempt   int    `json:"attempt"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "escalation.send" }

func (a SendArgs) key() string {
	return fmt.Sprintf("%d.%d.%s.%s.%d", a.Climb, a.Step, a.Channel, a.Target, a.Attempt)
}

// UpdateArgs rewrites every message sent for a handoff once it is final.
type UpdateArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

// Kind implements river.JobArgs.
func (UpdateArgs) Kind() string { return "escalation.update" }

// legacyEndArgs is the ladder-end job of earlier versions, which may still be queued in a database
// they wrote; it hands over to the handoff service's expiry.
type legacyEndArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

func (legacyEndArgs) Kind() string { return "escalation.end" }

// RegisterWorkers adds the engine's job workers.
func (e *Engine) RegisterWorkers(w *river.Workers) {
	river.AddWorker(w, &stepWorker{e: e})
	river.AddWorker(w, &sendWorker{e: e})
	river.AddWorker(w, &updateWorker{e: e})
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, j *river.Job[legacyEndArgs]) error {
		return e.d.Store.InOrg(ctx, j.Args.OrgID, func(tx store.OrgTx) error {
			return tx.Enqueue(ctx, handoff.ExpireArgs{OrgID: j.Args.OrgID, HandoffID: j.Args.HandoffID, Ladder: true}, nil)
		})
	}))
}

func (e *Engine) observe(kind string, scheduled time.Time) {
	if e.d.ObserveLateness != nil {
		e.d.ObserveLateness(kind, time.Since(scheduled))
	}
}

// snoozed reports whether a job has been snoozed before (its lateness is then not the queue's).
func snoozed(j *rivertype.JobRow) bool {
	return len(j.Metadata) > 0 && strings.Contains(string(j.Metadata), `"snoozes"`)
}

type stepWorker struct {
	river.WorkerDefaults[StepArgs]
	e *Engine
}

func (w *stepWorker) Work(ctx context.Context, j *river.Job[StepArgs]) error {
	if !snoozed(j.JobRow) {
		defer w.e.stepStarted(j.ScheduledAt)()
		w.e.observe(j.Kind, j.ScheduledAt)
	}
	err := w.e.RunStepJob(ctx, j.Args, j.ID)
	if errors.Is(err, ErrRungUnderWay) {
		return river.JobSnooze(snoozeOf(err))
	}
	return err
}

// Timeout bounds one run of a rung: its transaction, then its sends, made concurrently, each trying
// every provider of its kind in turn within the send timeout, and their settles. A rung left running
// by a killed process is retried (and hands its unsettled sends to send jobs) this long after it
// started, plus the job runner's rescue interval.
func (w *stepWorker) Timeout(*river.Job[StepArgs]) time.Duration { return w.e.rungTimeout }

// rungDeadline is the step job's Timeout, from the channels configured at start (New keeps it).
func (e *Engine) rungDeadline() time.Duration {
	most := 1
	for _, k := range e.kinds.Names() {
		most = max(most, len(e.d.Channels.Providers(k, nil)))
	}
	return time.Duration(most)*e.cfg.SendTimeout + 10*time.Second
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	e *Engine
}

// Timeout bounds one attempt: every provider of the channel in turn, each within the send timeout,
// and the two transactions around them. A send left running by a killed process is retried this
// long after it started (plus the job runner's rescue interval), not after the generic backstop.
func (w *sendWorker) Timeout(j *river.Job[SendArgs]) time.Duration {
	return time.Duration(max(len(w.e.d.Channels.Providers(j.Args.Channel, nil)), 1))*w.e.cfg.SendTimeout + 5*time.Second
}

// updateWorker rewrites the messages of a final handoff, one provider call per message.
type updateWorker struct {
	river.WorkerDefaults[UpdateArgs]
	e *Engine
}

func (w *updateWorker) Work(ctx context.Context, j *river.Job[UpdateArgs]) error {
	return w.e.RunUpdate(ctx, j.Args)
}

// Timeout: a handoff can have many messages to rewrite, each a provider call.
func (w *updateWorker) Timeout(*river.Job[UpdateArgs]) time.Duration { return 2 * time.Minute }

func (w *sendWorker) Work(ctx context.Context, j *river.Job[SendArgs]) error {
	w.e.observe(j.Kind, j.ScheduledAt)
	return w.e.RunSend(ctx, j.Args, j.Attempt >= j.MaxAttempts)
}

// NextRetry retries a notification soon: a person is waiting for it.
func (w *sendWorker) NextRetry(j *river.Job[SendArgs]) time.Time {
	return time.Now().Add(time.Duration(j.Attempt) * 5 * time.Second)
}
