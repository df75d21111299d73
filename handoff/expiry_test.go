package handoff_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestExpireDue: a create queues no job of its own for its deadline; the sweep ends exactly the
// pending handoffs past it — each once, through the whole expire path (status, the audit log's
// expiry leaf, the escalator's Finished, the callback job, the waiters' wake-up) — and leaves the
// decided one and the one not yet due alone. Sweeps running at once end each handoff once between
// them, and a sweep with nothing due records nothing.
func TestExpireDue(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e, spy, esc := newSpiedEnv(t, d)
			create := func(timeout time.Duration) store.Handoff {
				c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "Deploy api", Timeout: timeout,
					CallbackURL: "https://agent.example/cb"}, "")
				must(t, err)
				return c.Handoff
			}
			start := e.clock.now()
			var due []store.Handoff
			for range 12 {
				due = append(due, create(time.Minute))
			}
			decided := create(time.Minute)
			// The deadline is the sweep's to keep: nothing is queued for it.
			jobs, err := e.store.JobCounts(ctx, []string{"available", "scheduled"})
			must(t, err)
			if jobs["available"]+jobs["scheduled"] != 0 {
				t.Errorf("creates queued jobs %v, want none", jobs)
			}
			if _, err := e.svc.Decide(ctx, e.member, decided.ID, "approve", "", "api"); err != nil {
				t.Fatal(err)
			}
			later := create(3 * time.Minute)
			leaves := auditCount(t, e)

			// Before the deadline nothing is due.
			e.clock.set(start.Add(time.Minute - time.Microsecond))
			if n, err := e.svc.ExpireDue(ctx); err != nil || n != 0 {
				t.Fatalf("sweep before the deadline ended %d, %v; want 0", n, err)
			}
			waited := make(chan store.Handoff, 1)
			go func() {
				got, _ := e.svc.Wait(ctx, e.dev, due[0].ID, 30*time.Second, nil)
				waited <- got
			}()
			e.clock.set(start.Add(2 * time.Minute))
			var (
				mu    sync.Mutex
				ended int
				wg    sync.WaitGroup
			)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := e.svc.ExpireDue(ctx)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					ended += n
					mu.Unlock()
				}()
			}
			wg.Wait()
			if ended != len(due) {
				t.Errorf("three sweeps at once ended %d, want %d", ended, len(due))
			}
			for _, h := range due {
				got := get(t, e, h.ID)
				if got.Status != store.StatusExpired || got.Decision == nil || got.Decision.ByKind != store.ActorSystem ||
					got.Decision.ByID != "expiry" || got.Decision.Channel != "system" {
					t.Errorf("%s: %s %+v, want expired by the system", h.ID, got.Status, got.Decision)
				}
				if st := esc.status(h.ID); st != store.StatusExpired {
					t.Errorf("%s: the escalator heard %q, want expired", h.ID, st)
				}
				if n := spy.callbacks(h.ID); n != 1 {
					t.Errorf("%s: %d callback jobs, want 1", h.ID, n)
				}
			}
			if got := get(t, e, decided.ID); got.Status != store.StatusApproved {
				t.Errorf("decided handoff is %s, want approved", got.Status)
			}
			if got := get(t, e, later.ID); got.Status != store.StatusPending {
				t.Errorf("handoff due later is %s, want pending", got.Status)
			}
			if n := auditCount(t, e); n != leaves+len(due) {
				t.Errorf("%d audit leaves added, want %d", n-leaves, len(due))
			}
			if last := lastEvent(t, e); last.Type != audit.HandoffExpired || last.Actor.Kind != "system" {
				t.Errorf("last audit event %s by %s, want handoff.expired by system", last.Type, last.Actor.Kind)
			}
			select {
			case wh := <-waited:
				if wh.Status != store.StatusExpired {
					t.Errorf("the waiter saw %s, want expired", wh.Status)
				}
			case <-time.After(10 * time.Second):
				t.Error("the waiter did not wake within 10s")
			}
			leaves = auditCount(t, e)
			if n, err := e.svc.ExpireDue(ctx); err != nil || n != 0 {
				t.Errorf("a second sweep ended %d, %v; want 0", n, err)
			}
			if n := auditCount(t, e); n != leaves {
				t.Errorf("a sweep with nothing due added %d audit leaves", n-leaves)
			}
			e.clock.set(start.Add(3 * time.Minute))
			if n, err := e.svc.ExpireDue(ctx); err != nil || n != 1 {
				t.Errorf("sweep at the later deadline ended %d, %v; want 1", n, err)
			}
		})
	}
}

// TestExpiryIsScheduled: the sweep is a periodic job of the handoff package.
func TestExpiryIsScheduled(t *testing.T) {
	t.Parallel()
	jobs := handoff.ExpiryPeriodicJobs()
	if len(jobs) != 1 || !handoff.IsExpiryJob(jobs[0]) {
		t.Fatalf("ExpiryPeriodicJobs = %v", jobs)
	}
}
