package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

type jobArgs struct {
	Name string `json:"name"`
}

func (jobArgs) Kind() string { return "storetest.job" }

type jobWorker struct {
	river.WorkerDefaults[jobArgs]
	mu   sync.Mutex
	runs map[string]int
	ran  chan string
}

func (w *jobWorker) Work(_ context.Context, j *river.Job[jobArgs]) error {
	w.mu.Lock()
	w.runs[j.Args.Name]++
	w.mu.Unlock()
	w.ran <- j.Args.Name
	return nil
}

// testJobs: Enqueue's plain insert (now, overdue, future, with attempts and priority) and River's own
// path (uniqueness) both give jobs the runner works exactly once, with their arguments, and a job
// due later waits.
func testJobs(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "jobs")
	w := &jobWorker{runs: map[string]int{}, ran: make(chan string, 16)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, j := range []struct {
			name string
			opts *river.InsertOpts
		}{
			{"now", nil},
			{"overdue", &river.InsertOpts{ScheduledAt: time.Now().Add(-time.Hour), MaxAttempts: 3, Priority: 2}},
			{"later", &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}},
			{"unique", unique},
			{"unique", unique}, // a duplicate River skips
		} {
			if err := tx.Enqueue(ctx, jobArgs{Name: j.name}, j.opts); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.StartJobs(ctx, workers, store.JobsConfig{PollInterval: 20 * time.Millisecond}))
	t.Cleanup(func() { _ = s.StopJobs(context.Background()) })
	want := map[string]bool{"now": true, "overdue": true, "unique": true}
	deadline := time.After(30 * time.Second)
	for len(want) > 0 {
		select {
		case n := <-w.ran:
			if !want[n] {
				t.Fatalf("job %q ran, want only now, overdue and unique once each", n)
			}
			delete(want, n)
		case <-deadline:
			t.Fatalf("jobs %v never ran", want)
		}
	}
	// A few more polls: nothing else may run (the duplicate, or the job due in an hour).
	select {
	case n := <-w.ran:
		t.Fatalf("job %q ran again or early", n)
	case <-time.After(300 * time.Millisecond):
	}
}
