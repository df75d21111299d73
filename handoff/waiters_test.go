package handoff

import (
	"testing"

	"github.com/ony-ai/ony/store"
)

// TestWaitersKeepOnlyWhileWaited: a finished handoff is kept only for a topic someone waits on, for
// every waiter until the last leaves, and then dropped, so nothing accumulates.
func TestWaitersKeepOnlyWhileWaited(t *testing.T) {
	w := newWaiters()
	h := store.Handoff{ID: "h1", Status: store.StatusDenied}

	w.committed("t1", h) // nobody waits on t1
	if _, ok := w.take("t1"); ok {
		t.Fatal("kept a handoff nobody waited on")
	}

	leave1, leave2 := w.join("t1"), w.join("t1")
	w.committed("t1", h)
	leave1()
	leave1() // idempotent: must not end the second wait
	if got, ok := w.take("t1"); !ok || got.ID != "h1" {
		t.Fatalf("the second waiter lost the handoff: %+v %v", got, ok)
	}
	leave2()
	if _, ok := w.take("t1"); ok || len(w.finished) != 0 || len(w.count) != 0 {
		t.Fatalf("left behind: finished %d, count %d", len(w.finished), len(w.count))
	}
}
