package escalation

import (
	"context"

	"github.com/ony-ai/ony/store"
)

// ErrSimulatedCrash is what a rung returns where crash (SetCrashAfterCommit) stopped it.
var ErrSimulatedCrash = errSimulatedCrash

// SetCrashAfterCommit makes each rung for which crash reports true stop after its transaction
// committed and before it sends, as a killed process would.
func SetCrashAfterCommit(e *Engine, crash func(StepArgs) bool) { e.crashAfterCommit = crash }

// SetFirstRungByJob leaves each new handoff's first rung to a step job, as the rungs after it.
func SetFirstRungByJob(e *Engine) { e.firstRungByJob = true }

// RescueGrace is how long after a first rung's deadline its rescue job is due.
const RescueGrace = rescueGrace

// SnoozeOf is how long a rung's job that returned err sleeps before it looks again.
var SnoozeOf = snoozeOf

// SettleOnly records u on a's send row if it is in one of from, batched with the org's other settles.
func SettleOnly(ctx context.Context, e *Engine, a SendArgs, from []store.SendState, u store.SendUpdate) error {
	return e.settleOnly(ctx, a, from, u)
}

// QueuedSettles is how many settles of org wait for a batch.
func QueuedSettles(e *Engine, org string) int {
	e.settles.mu.Lock()
	defer e.settles.mu.Unlock()
	if g := e.settles.orgs[org]; g != nil {
		return len(g.queue)
	}
	return 0
}

// MaxSettleBatches is how many batches of one org's settles are written at once.
const MaxSettleBatches = maxBatches
