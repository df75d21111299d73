package escalation

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ony-ai/ony/problem"
)

// admission gives due rungs the cores before new handoffs. On two shared cores a flood of creates
// starved the rung jobs of CPU and database time, and rungs fell seconds behind their schedule (p99
// 15 s with 10,000 pending): a person heard late about a handoff that was already waiting. So while
// step jobs start late, creates pass a gate one at a time, and the queue catches up.
type admission struct {
	now func() time.Time
	// lateRunning counts the late step jobs under way; the gate is narrow while there is one.
	lateRunning atomic.Int64
	// behindUntil (unix ns) keeps it narrow admitHold after the last late step job ended.
	behindUntil atomic.Int64
	// logged (unix ns) is when the log last said the gate narrowed.
	logged atomic.Int64
	slots  chan struct{}
	wait   time.Duration // admitWait; tests shorten it
}

const (
	// admitLate is how late a step job may start before creates are gated.
	admitLate = 200 * time.Millisecond
	// admitHold keeps the gate narrow this long after the last late step job ended. While the queue
	// is behind, the next late job starts within it.
	admitHold = time.Second
	// admitSlots is how many creates may run at once while the gate is narrow.
	admitSlots = 1
	// admitWait is the longest a create waits at the gate before it is refused with 503 (agents
	// retry 5xx, with their idempotency key).
	admitWait = 10 * time.Second
	// admitLogEvery spaces the log lines that say the gate narrowed.
	admitLogEvery = time.Minute
)

func newAdmission(now func() time.Time) *admission {
	return &admission{now: now, slots: make(chan struct{}, admitSlots), wait: admitWait}
}

func (a *admission) narrow() bool {
	return a.lateRunning.Load() > 0 || a.now().UnixNano() < a.behindUntil.Load()
}

// started is told how late a step job started. It returns what the job's end calls, and whether to
// log that the gate narrowed: it was open, and the last such line is admitLogEvery old.
func (a *admission) started(late time.Duration) (end func(), log bool) {
	if late <= admitLate {
		return func() {}, false
	}
	if !a.narrow() {
		now, last := a.now().UnixNano(), a.logged.Load()
		log = now-last >= int64(admitLogEvery) && a.logged.CompareAndSwap(last, now)
	}
	a.lateRunning.Add(1)
	return func() {
		a.behindUntil.Store(a.now().Add(admitHold).UnixNano())
		a.lateRunning.Add(-1)
	}, log
}

// stepStarted tells the gate a step job started, scheduled for scheduled, and returns what the job's
// end calls.
func (e *Engine) stepStarted(scheduled time.Time) func() {
	late := time.Since(scheduled) // River's times are the real clock's
	end, log := e.admit.started(late)
	if log {
		e.d.Logger.Info("rungs are running late; new handoffs are admitted one at a time until they catch up", "late", late.Round(time.Millisecond))
	}
	return end
}

// errBehind refuses a create that waited admitWait at the gate.
var errBehind = &problem.Error{Kind: problem.Unavailable, Code: "escalation_behind",
	Message: "escalations are running late and new handoffs are being admitted one at a time; retry shortly", RetryAfter: 2 * time.Second}

// Admit implements handoff.Admission. While rungs run late it lets one create at a time through;
// the func it returns ends that create's turn.
func (e *Engine) Admit(ctx context.Context) (func(), error) {
	a := e.admit
	if !a.narrow() {
		return func() {}, nil
	}
	e.d.Metrics.CreateHeld()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-t.C:
		return nil, errBehind
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
