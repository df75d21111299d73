package escalation

// ErrSimulatedCrash is what a rung returns where crash (SetCrashAfterCommit) stopped it.
var ErrSimulatedCrash = errSimulatedCrash

// SetCrashAfterCommit makes each rung for which crash reports true stop after its transaction
// committed and before it sends, as a killed process would.
func SetCrashAfterCommit(e *Engine, crash func(StepArgs) bool) { e.crashAfterCommit = crash }

// SnoozeOf is how long a rung's job that returned err sleeps before it looks again.
var SnoozeOf = snoozeOf
