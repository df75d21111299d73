package escalation

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

// rescueGrace is how long after a first rung's deadline its rescue job is due: a settle under way at
// the deadline has 10 s more to be written (settleOnly), so the rescue never races one.
const rescueGrace = 15 * time.Second

// FirstRung runs h's first rung in the transaction that creates h, after its insert: it claims the
// rung's sends and schedules what follows, as the rung's step job would. The func it returns, to be
// called once that transaction has committed (never after a rollback), makes the claimed sends in the
// background. A create thus reaches its first rung without the step job's fetch, its transaction
// re-reading the handoff, and its completion; on SQLite, whose writers take turns, those held the
// write turn about as long as the create itself.
//
// Exactly once across a crash: when the rung has sends to make, the transaction also enqueues the
// rung's step job as its rescue, due after the sends' deadline, and the rung's marker names that job
// as the one that claimed them. Once every send has settled the rescue is cancelled. If the process
// dies first, the rescue runs as a rescued step job does (resumeRung): it makes again each send whose
// row still reads "sending", under the same key.
func (e *Engine) FirstRung(ctx context.Context, tx store.OrgTx, h store.Handoff, agent string) (func(), error) {
	if len(h.Ladder) == 0 {
		return func() {}, nil
	}
	l, err := Frozen(h)
	if err != nil {
		return nil, err
	}
	a := StepArgs{OrgID: h.OrgID, HandoffID: h.ID}
	if e.firstRungByJob {
		return func() {}, tx.Enqueue(ctx, a, nil)
	}
	now := e.now()
	users, err := rungUsers(ctx, tx, l, a)
	if err != nil {
		return nil, err
	}
	plan := e.plan(h, l, a, users, now)
	timeout := e.rungTimeout
	var rescue int64
	if slices.ContainsFunc(plan, func(p planned) bool { return p.state == "" }) {
		if rescue, err = tx.EnqueueID(ctx, a, &river.InsertOpts{ScheduledAt: now.Add(timeout + rescueGrace)}); err != nil {
			return nil, err
		}
	}
	marker := store.Send{HandoffID: h.ID, Key: stepMarkerKey(0, 0), State: store.SendStepDone, Channel: "step", Target: "-",
		Detail: fanoutDetail(len(plan), rescue), CreatedAt: now, UpdatedAt: now}
	fanned, out, err := e.claimRung(ctx, tx, h, l, a, now, plan, marker, agent)
	if errors.Is(err, errRungClaimed) {
		// A plan that repeats a row (claimRung wrote nothing): the step job's careful path takes the
		// rung, as it did for every rung before.
		if rescue != 0 {
			if _, err := tx.CancelJob(ctx, rescue); err != nil {
				return nil, err
			}
		}
		return func() {}, tx.Enqueue(ctx, a, nil)
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && rescue != 0 {
		// Every send was settled in the transaction (a person who can no longer decide): nothing to rescue.
		if _, err := tx.CancelJob(ctx, rescue); err != nil {
			return nil, err
		}
	}
	if err := scheduleNext(ctx, tx, h, l, a); err != nil {
		return nil, err
	}
	return func() {
		if fanned > 0 {
			e.d.Logger.InfoContext(ctx, "escalation step", "org", a.OrgID, "handoff", a.HandoffID, "climb", 0, "step", 0, "sends", fanned)
		}
		if len(out) == 0 {
			return
		}
		// The sends stop at the rung's deadline, counted from the claim, however late they start, so
		// the rescue (due rescueGrace later) never runs beside them. The request that created the
		// handoff does not wait for them, so its cancellation does not stop them.
		sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), time.Now().Add(timeout))
		e.firstSends.Go(func() {
			defer cancel()
			e.sendFirst(sctx, a, out, rescue)
		})
	}, nil
}

// sendFirst makes a first rung's claimed sends and then cancels its rescue. Should a settle fail,
// the rescue stays and makes again what did not settle.
func (e *Engine) sendFirst(ctx context.Context, a StepArgs, out []outgoing, rescue int64) {
	if e.crashAfterCommit != nil && e.crashAfterCommit(a) {
		return
	}
	if err := e.sendAll(ctx, out); err != nil {
		e.d.Logger.WarnContext(ctx, "escalation first rung: a send did not settle; its rescue job will make it again", "org", a.OrgID,
			"handoff", a.HandoffID, "err", err)
		return
	}
	if err := e.cancelJob(ctx, a.OrgID, rescue); err != nil {
		// The rescue will run, find every send settled, and do nothing.
		e.d.Logger.WarnContext(ctx, "escalation first rung: could not cancel its rescue job", "org", a.OrgID, "handoff", a.HandoffID, "err", err)
	}
}

// Wait returns once the first rungs' sends under way have finished, or when ctx ends (their rescue
// jobs make what was left). Call it after the last create has returned, before the store closes.
func (e *Engine) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.firstSends.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
