//go:build race

package audit_test

// raceEnabled trims the most exhaustive database loop (TestProofs' consistency pairs), which the race
// detector slows several-fold on SQLite.
const raceEnabled = true
