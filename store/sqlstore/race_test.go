//go:build race

package sqlstore_test

// raceScale shrinks the plan test's tables under the race detector, where SQLite (C translated to
// Go) runs an order of magnitude slower; the proportions, and so the plans, stay those of issue 12.
const raceScale = 8
