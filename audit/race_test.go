//go:build race

package audit_test

// raceEnabled trims the most exhaustive database loops, which the race detector slows tenfold.
const raceEnabled = true
