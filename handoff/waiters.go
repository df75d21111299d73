package handoff

import (
	"sync"

	"github.com/ony-ai/ony/store"
)

// waiters hands a handoff this process just finished to the long-polls waiting on it here, so that
// a wake-up from this replica's own decision returns what was committed instead of reading it back
// (a transaction of four round trips on PostgreSQL, on the path the agent waits on). A wake-up from
// another replica, or one this process cannot match, still re-reads the database.
//
// Only handoffs someone here waits on are kept, and each only while someone does: the last waiter
// to leave takes it away, so memory follows the number of open waits.
type waiters struct {
	mu       sync.Mutex
	count    map[string]int           // topic → waits open here
	finished map[string]store.Handoff // topic → as committed by this process, while count > 0
}

func newWaiters() *waiters {
	return &waiters{count: map[string]int{}, finished: map[string]store.Handoff{}}
}

// join registers a wait on topic; the returned func ends it.
func (w *waiters) join(topic string) (leave func()) {
	w.mu.Lock()
	w.count[topic]++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.count[topic]--; w.count[topic] <= 0 {
				delete(w.count, topic)
				delete(w.finished, topic)
			}
		})
	}
}

// committed offers h, final and committed, to the waits on topic, if there are any here.
func (w *waiters) committed(topic string, h store.Handoff) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[topic] > 0 {
		w.finished[topic] = h
	}
}

// take returns what this process committed for topic, if it did while the caller waited.
func (w *waiters) take(topic string) (store.Handoff, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.finished[topic]
	return h, ok
}
