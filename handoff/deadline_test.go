package handoff_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// finishedRecorder is an Escalator that notes which handoffs it was told ended, and how.
type finishedRecorder struct {
	mu  sync.Mutex
	got map[string]store.Status
}

func (r *finishedRecorder) Start(context.Context, store.OrgTx, *store.Handoff) error { return nil }
func (r *finishedRecorder) FirstRung(context.Context, store.OrgTx, store.Handoff, string) (func(), error) {
	return func() {}, nil
}
func (r *finishedRecorder) Ended(context.Context, store.OrgTx, store.Handoff) (bool, error) {
	return true, nil
}
func (r *finishedRecorder) Finished(_ context.Context, _ store.OrgTx, h store.Handoff) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[h.ID] = h.Status
	return nil
}

func (r *finishedRecorder) status(id string) store.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// newSpiedEnv is a service whose store notes committed callback jobs and whose escalator records
// how handoffs finished.
func newSpiedEnv(t *testing.T, dialect string) (env, *callbackSpy, *finishedRecorder) {
	esc := &finishedRecorder{got: map[string]store.Status{}}
	var spy *callbackSpy
	e := newEnvEsc(t, dialect, 20*time.Millisecond, func(s store.Store) store.Store {
		spy = &callbackSpy{Store: s, got: map[string]int{}}
		return spy
	}, esc)
	return e, spy, esc
}

// callbackSpy is a store that notes the callback jobs committed transactions enqueue.
type callbackSpy struct {
	store.Store
	mu  sync.Mutex
	got map[string]int
}

func (s *callbackSpy) InOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	var pending []string
	err := s.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		pending = pending[:0]
		return fn(spyTx{OrgTx: tx, note: func(id string) { pending = append(pending, id) }})
	})
	if err == nil {
		s.mu.Lock()
		for _, id := range pending {
			s.got[id]++
		}
		s.mu.Unlock()
	}
	return err
}

func (s *callbackSpy) callbacks(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id]
}

type spyTx struct {
	store.OrgTx
	note func(id string)
}

func (t spyTx) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if cb, ok := args.(handoff.CallbackArgs); ok {
		t.note(cb.HandoffID)
	}
	return t.OrgTx.Enqueue(ctx, args, opts)
}

// TestDecisionAtDeadline: the expiry job is late (it has not run at all here), yet a decision at or
// after expires_at — by session, by a channel's decision token, or a cancel — is refused with
// "expired", and the same transaction expires the handoff: its status, the audit log's expiry leaf,
// the escalator's Finished (which rewrites the ladder's messages), the callback job and the waiters'
// wake-up all happen. A microsecond before the deadline the decision stands.
func TestDecisionAtDeadline(t *testing.T) {
	t.Parallel()
	type way struct {
		name string
		act  func(e env, h store.Handoff, token string) (store.Handoff, error)
		want store.Status // when in time
	}
	ways := []way{
		{"decide", func(e env, h store.Handoff, _ string) (store.Handoff, error) {
			return e.svc.Decide(ctx, e.member, h.ID, "approve", "", "api")
		}, store.StatusApproved},
		{"token", func(e env, h store.Handoff, token string) (store.Handoff, error) {
			return e.svc.DecideAnswer(ctx, handoff.Answer{Token: token, Option: "deny", Channel: "sms"})
		}, store.StatusDenied},
		{"cancel", func(e env, h store.Handoff, _ string) (store.Handoff, error) {
			return e.svc.Cancel(ctx, e.dev, h.ID, "not needed")
		}, store.StatusCancelled},
	}
	offsets := []struct {
		name    string
		at      time.Duration // after expires_at
		expired bool
	}{
		{"1µs before", -time.Microsecond, false},
		{"at", 0, true},
		{"3m after", 3 * time.Minute, true},
	}
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e, spy, esc := newSpiedEnv(t, d)
			for _, w := range ways {
				for _, o := range offsets {
					name := fmt.Sprintf("%s %s", w.name, o.name)
					c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: name, Timeout: time.Minute,
						CallbackURL: "https://agent.example/cb"}, "")
					if err != nil {
						t.Fatal(err)
					}
					h := c.Handoff
					tok, err := auth.NewToken(auth.DecisionTokenPrefix)
					if err != nil {
						t.Fatal(err)
					}
					must(t, e.store.InOrg(ctx, h.OrgID, func(tx store.OrgTx) error {
						return tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, UserID: e.member.ID,
							Channel: "sms", CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt})
					}))
					leaves := auditCount(t, e)

					// The clock is shared by the subtests of one dialect, so they run in sequence: set it
					// to this case's moment, relative to this handoff's deadline.
					e.clock.set(h.ExpiresAt.Add(o.at))
					waited := make(chan store.Handoff, 1)
					if o.expired {
						go func() {
							got, _ := e.svc.Wait(ctx, e.dev, h.ID, 30*time.Second, nil)
							waited <- got
						}()
					}
					got, err := w.act(e, h, tok.Plain)
					if !o.expired {
						if err != nil || got.Status != w.want {
							t.Fatalf("%s: %s, %v; want %s", name, got.Status, err, w.want)
						}
						continue
					}
					p, ok := problem.As(err)
					if !ok || p.Code != "expired" || p.Kind != problem.Conflict {
						t.Errorf("%s: err = %v (status %s), want 409 expired", name, err, got.Status)
						continue
					}
					stored := get(t, e, h.ID)
					if stored.Status != store.StatusExpired || stored.Decision == nil || stored.Decision.ByKind != store.ActorSystem ||
						stored.Decision.Channel != "system" {
						t.Fatalf("%s: stored %s %+v, want expired by the system", name, stored.Status, stored.Decision)
					}
					if !stored.Decision.DecidedAt.Equal(h.ExpiresAt.Add(o.at)) {
						t.Errorf("%s: decided_at %s, want the moment of the refused request %s", name, stored.Decision.DecidedAt, h.ExpiresAt.Add(o.at))
					}
					if n := auditCount(t, e); n != leaves+1 {
						t.Errorf("%s: %d audit leaves added, want 1", name, n-leaves)
					}
					if last := lastEvent(t, e); last.Type != audit.HandoffExpired || last.Subject.ID != h.ID || last.Actor.Kind != "system" {
						t.Errorf("%s: last audit event %s by %s for %s, want handoff.expired by system for %s", name, last.Type, last.Actor.Kind, last.Subject.ID, h.ID)
					}
					if st := esc.status(h.ID); st != store.StatusExpired {
						t.Errorf("%s: the escalator heard %q, want expired (the ladder's messages are rewritten)", name, st)
					}
					if n := spy.callbacks(h.ID); n != 1 {
						t.Errorf("%s: %d callback jobs, want 1", name, n)
					}
					select {
					case wh := <-waited:
						if wh.Status != store.StatusExpired {
							t.Errorf("%s: the waiter saw %s, want expired", name, wh.Status)
						}
					case <-time.After(10 * time.Second):
						t.Errorf("%s: the waiter did not wake within 10s", name)
					}
					// The late expiry job, when it comes, changes nothing.
					if again, err := e.svc.Expire(ctx, h.OrgID, h.ID); err != nil || !again.Decision.DecidedAt.Equal(stored.Decision.DecidedAt) {
						t.Errorf("%s: the late expiry job: %+v, %v", name, again.Decision, err)
					}
				}
			}
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, e env, id string) store.Handoff {
	t.Helper()
	var h store.Handoff
	must(t, e.store.InOrg(ctx, e.dev.OrgID, func(tx store.OrgTx) (err error) {
		h, err = tx.HandoffByID(ctx, id)
		return err
	}))
	return h
}

func auditCount(t *testing.T, e env) int {
	t.Helper()
	ls, err := e.audit.Leaves(ctx, e.store, e.dev.OrgID, 0, 10000)
	must(t, err)
	return len(ls)
}

func lastEvent(t *testing.T, e env) audit.Event {
	t.Helper()
	ls, err := e.audit.Leaves(ctx, e.store, e.dev.OrgID, 0, 10000)
	must(t, err)
	if len(ls) == 0 {
		t.Fatal("empty audit log")
	}
	ev, err := audit.Decode(ls[len(ls)-1].Data)
	must(t, err)
	return ev
}

// outage is a store that, while down, fails every transaction as an unreachable database would, and
// counts the attempts.
type outage struct {
	store.Store
	mu       sync.Mutex
	down     bool
	attempts int
	reads    chan struct{} // told of every transaction that succeeds, when someone listens
}

func (o *outage) set(down bool) { o.mu.Lock(); o.down = down; o.mu.Unlock() }

func (o *outage) failing() (bool, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		o.attempts++
	}
	return o.down, o.attempts
}

func (o *outage) InOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	return o.tx(ctx, orgID, fn, o.Store.InOrg)
}

// ReadOrg is how a wait reads.
func (o *outage) ReadOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	return o.tx(ctx, orgID, fn, o.Store.ReadOrg)
}

func (o *outage) tx(ctx context.Context, orgID string, fn func(store.OrgTx) error, run func(context.Context, string, func(store.OrgTx) error) error) error {
	if down, _ := o.failing(); down {
		return fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	}
	err := run(ctx, orgID, fn)
	select {
	case o.reads <- struct{}{}:
	default:
	}
	return err
}

// TestWaitHoldsThroughOutage: a wait does not fail when the database cannot be reached. Begun during
// an outage it retries until the database answers and then ends with the decision; an outage that
// lasts its whole timeout ends it with the last state it read, or with ErrUnavailable if it read none.
func TestWaitHoldsThroughOutage(t *testing.T) {
	t.Parallel()
	var o *outage
	e := newEnvWith(t, "sqlite", time.Minute, func(s store.Store) store.Store { o = &outage{Store: s, reads: make(chan struct{}, 1)}; return o })
	c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "x"}, "")
	must(t, err)
	id := c.Handoff.ID

	o.set(true)
	start := time.Now()
	_, err = e.svc.Wait(ctx, e.dev, id, time.Second, nil)
	if !errors.Is(err, store.ErrUnavailable) || time.Since(start) < time.Second {
		t.Fatalf("a wait that never read: %v after %s, want ErrUnavailable after its 1s", err, time.Since(start))
	}
	_, tries := o.failing()
	t.Logf("a 1s wait through an outage tried %d reads", tries)

	type waited struct {
		h   store.Handoff
		err error
	}
	done := make(chan waited, 1)
	go func() {
		h, err := e.svc.Wait(ctx, e.dev, id, 30*time.Second, nil)
		done <- waited{h, err}
	}()
	// Hold until the waiter has retried at least twice during the outage.
	for _, n := o.failing(); ; _, n = o.failing() {
		if n >= tries+3 {
			break
		}
		select {
		case w := <-done:
			t.Fatalf("the wait ended during the outage: %s, %v", w.h.Status, w.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	o.set(false)
	if _, err := e.svc.Decide(ctx, e.member, id, "approve", "", "api"); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-done:
		if w.err != nil || w.h.Status != store.StatusApproved {
			t.Fatalf("the wait begun during the outage: %s, %v; want approved", w.h.Status, w.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait begun during the outage did not end within 10s of the decision")
	}

	// Read once, then the database goes away for good: the last state read, without an error.
	h2, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "y"}, "")
	must(t, err)
	select {
	case <-o.reads: // Create's
	default:
	}
	go func() {
		h, err := e.svc.Wait(ctx, e.dev, h2.Handoff.ID, 2*time.Second, nil)
		done <- waited{h, err}
	}()
	<-o.reads // the waiter's first read: nothing else runs on this service now
	o.set(true)
	if w := <-done; w.err != nil || w.h.Status != store.StatusPending || w.h.ID != h2.Handoff.ID {
		t.Fatalf("a wait cut off after its read: %+v, %v; want the pending state it read", w.h.Status, w.err)
	}
}
