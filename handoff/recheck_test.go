package handoff

import (
	"testing"
	"time"
)

// TestRecheckIsSpread: a wait's re-reads come after a fresh random pause between half and all of
// WaitRecheck, so that waits started together do not stay in step.
func TestRecheckIsSpread(t *testing.T) {
	t.Parallel()
	for _, every := range []time.Duration{2 * time.Second, 5 * time.Millisecond, 3} {
		lo, hi := every, time.Duration(0)
		seen := map[time.Duration]bool{}
		for range 2000 {
			d := recheckAfter(every)
			if d < every/2 || d > every {
				t.Fatalf("recheckAfter(%s) = %s, outside [%s, %s]", every, d, every/2, every)
			}
			lo, hi, seen[d] = min(lo, d), max(hi, d), true
		}
		// Spread over the range: the lowest draw in its bottom fifth, the highest in its top fifth.
		if span := every - every/2; every > 1000 && (lo-every/2 > span/5 || every-hi > span/5 || len(seen) < 100) {
			t.Errorf("recheckAfter(%s): draws from %s to %s, %d distinct; not spread", every, lo, hi, len(seen))
		}
	}
}
