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
	OrgID string `json:"org_id,omitempty"` // as Ony's jobs name their organization
	Name  string `json:"name"`
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

type holdArgs struct {
	OrgID string `json:"org_id"`
}

func (holdArgs) Kind() string { return "storetest.hold" }

type holdWorker struct {
	river.WorkerDefaults[holdArgs]
	started, release chan struct{}
}

func (w *holdWorker) Work(ctx context.Context, _ *river.Job[holdArgs]) error {
	w.started <- struct{}{}
	<-w.release
	return nil
}

// testCancelJob: EnqueueID returns the id of a job inserted either way (the plain insert, River's
// own); CancelJob deletes it while it waits, so it never runs, and only in its own organization; a
// job that is running, or gone, is not cancelled.
func testCancelJob(t *testing.T, s store.Store) {
	a, b := NewFixture(t, s, "a"), NewFixture(t, s, "b")
	ids := map[string]int64{}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		for _, j := range []struct {
			name string
			opts *river.InsertOpts
		}{
			{"now", nil},
			{"later", &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}},
			{"unique", &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}},
		} {
			id, err := tx.EnqueueID(ctx, jobArgs{OrgID: a.Org.ID, Name: j.name}, j.opts)
			if err != nil {
				return err
			}
			ids[j.name] = id
		}
		id, err := tx.EnqueueID(ctx, holdArgs{OrgID: a.Org.ID}, nil)
		ids["hold"] = id
		return err
	}))
	if ids["now"] == 0 || ids["now"] == ids["later"] || ids["later"] == ids["unique"] || ids["unique"] == ids["hold"] {
		t.Fatalf("job ids %v, want distinct and not 0", ids)
	}
	cancel := func(org string, id int64) bool {
		t.Helper()
		var ok bool
		must(t, s.InOrg(ctx, org, func(tx store.OrgTx) (err error) {
			ok, err = tx.CancelJob(ctx, id)
			return err
		}))
		return ok
	}
	if cancel(b.Org.ID, ids["now"]) {
		t.Error("another organization cancelled the job")
	}
	for _, n := range []string{"now", "later", "unique"} {
		if !cancel(a.Org.ID, ids[n]) {
			t.Errorf("job %q was not cancelled", n)
		}
		if cancel(a.Org.ID, ids[n]) {
			t.Errorf("job %q was cancelled twice", n)
		}
	}

	w := &jobWorker{runs: map[string]int{}, ran: make(chan string, 16)}
	hw := &holdWorker{started: make(chan struct{}, 1), release: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	river.AddWorker(workers, hw)
	must(t, s.StartJobs(ctx, workers, store.JobsConfig{PollInterval: 20 * time.Millisecond}))
	t.Cleanup(func() { _ = s.StopJobs(context.Background()) })
	select {
	case <-hw.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the held job never ran")
	}
	if cancel(a.Org.ID, ids["hold"]) {
		t.Error("a running job was cancelled")
	}
	close(hw.release)
	// The cancelled jobs were due; a few polls later none has run.
	select {
	case n := <-w.ran:
		t.Fatalf("cancelled job %q ran", n)
	case <-time.After(300 * time.Millisecond):
	}
}
