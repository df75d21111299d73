//go:build race

package redact

// The race detector slows code by a varying factor, so timing tests skip under it.
func init() { raceEnabled = true }
