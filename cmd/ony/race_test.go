//go:build race

package main

// The test binary was built with -race, so the ony binary under test is too: every subprocess then
// runs under the race detector, and a race anywhere in the server fails the test that started it.
func init() { raceEnabled = true }
