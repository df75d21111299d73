package handoff_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	svc    *handoff.Service
	clock  *clock
	store  store.Store // the real one, under any wrapper the service uses
	audit  *audit.Log
	dev    handoff.Actor
	member handoff.Actor
	viewer handoff.Actor
}

func newEnv(t *testing.T, dialect string) env {
	return newEnvWith(t, dialect, 20*time.Millisecond, nil)
}

// newEnvWith builds an env whose waiters re-read every recheck; wrap, if set, wraps the store the
// service uses (the fixture is written straight to the real one).
func newEnvWith(t *testing.T, dialect string, recheck time.Duration, wrap func(store.Store) store.Store) env {
	return newEnvEsc(t, dialect, recheck, wrap, nil)
}

// newEnvEsc is newEnvWith with an Escalator for the service.
func newEnvEsc(t *testing.T, dialect string, recheck time.Duration, wrap func(store.Store) store.Store, esc handoff.Escalator) env {
	return newEnvDeps(t, dialect, recheck, wrap, func(d *handoff.Deps) { d.Escalator = esc })
}

// newEnvDeps is newEnvWith with the service's dependencies edited by deps.
func newEnvDeps(t *testing.T, dialect string, recheck time.Duration, wrap func(store.Store) store.Store, deps func(*handoff.Deps)) env {
	s := testdb.Open(t, dialect)
	var svcStore store.Store = s
	if wrap != nil {
		svcStore = wrap(s)
	}
	kr, err := keyring.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)}
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(keys, "ony-test", func(r string) bool { return risk.KnownReason(risk.Reason(r)) }, c.now)
	d := handoff.Deps{Store: svcStore, Audit: log, Risk: risk.Default(), Keyring: kr, Coord: coord.NewMemory(nil),
		Logger: testdb.Discard, Clock: c.now}
	deps(&d)
	svc := handoff.NewService(d, handoff.Config{DefaultTimeout: time.Hour, WaitRecheck: recheck})
	f := storetest.NewFixture(t, s, "acme")
	return env{svc: svc, clock: c, store: s, audit: log,
		dev:    handoff.Actor{OrgID: f.Org.ID, Kind: store.ActorDevice, ID: f.Device.ID},
		member: handoff.Actor{OrgID: f.Org.ID, Kind: store.ActorUser, ID: f.User.ID, Name: "Ana", Role: store.RoleMember},
		viewer: handoff.Actor{OrgID: f.Org.ID, Kind: store.ActorUser, ID: f.User.ID, Name: "Vi", Role: store.RoleViewer},
	}
}

func code(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ok := handoff.CreateRequest{Action: "deploy", Title: "Deploy"}
	cases := []struct {
		name string
		edit func(r *handoff.CreateRequest)
		want string
	}{
		{"ok", func(r *handoff.CreateRequest) {}, ""},
		{"custom action", func(r *handoff.CreateRequest) { r.Action = "acme.billing.refund_v2" }, ""},
		{"upper action", func(r *handoff.CreateRequest) { r.Action = "Deploy" }, "invalid_action"},
		{"double dot", func(r *handoff.CreateRequest) { r.Action = "a..b" }, "invalid_action"},
		{"no title", func(r *handoff.CreateRequest) { r.Title = "  " }, "invalid_title"},
		{"long title", func(r *handoff.CreateRequest) { r.Title = strings.Repeat("é", 201) }, "invalid_title"},
		{"200 runes ok", func(r *handoff.CreateRequest) { r.Title = strings.Repeat("é", 200) }, ""},
		{"newline title", func(r *handoff.CreateRequest) { r.Title = "a\nb" }, "invalid_title"},
		// Callers inside the process skip the HTTP decoder; the service refuses bad UTF-8 itself.
		{"title not UTF-8", func(r *handoff.CreateRequest) { r.Title = "Deploy \xff" }, "invalid_title"},
		{"summary not UTF-8", func(r *handoff.CreateRequest) { r.Summary = "caf\xe9" }, "invalid_summary"},
		{"label not UTF-8", func(r *handoff.CreateRequest) { r.Labels = map[string]string{"env": "pr\x80d"} }, "invalid_labels"},
		{"option label not UTF-8", func(r *handoff.CreateRequest) {
			r.Options = []store.Option{{ID: "a", Label: "\xc3", Approves: true}, {ID: "b", Label: "B"}}
		}, "invalid_options"},
		{"title only bidi", func(r *handoff.CreateRequest) { r.Title = "\u202e\u2066 \u2069" }, "invalid_title"},
		{"label only bidi is empty", func(r *handoff.CreateRequest) { r.Labels = map[string]string{"env": "\u202e"} }, ""},
		{"one option", func(r *handoff.CreateRequest) { r.Options = []store.Option{{ID: "a", Label: "A", Approves: true}} }, "invalid_options"},
		{"no refusal", func(r *handoff.CreateRequest) {
			r.Options = []store.Option{{ID: "a", Label: "A", Approves: true}, {ID: "b", Label: "B", Approves: true}}
		}, "invalid_options"},
		{"dup option", func(r *handoff.CreateRequest) {
			r.Options = []store.Option{{ID: "a", Label: "A", Approves: true}, {ID: "a", Label: "B"}}
		}, "invalid_options"},
		{"payload kind", func(r *handoff.CreateRequest) { r.Payload = &handoff.Payload{Kind: "exe", Content: "x"} }, "invalid_payload"},
		{"payload big", func(r *handoff.CreateRequest) {
			r.Payload = &handoff.Payload{Kind: "log", Content: strings.Repeat("x", 1<<20+1)}
		}, "payload_too_large"},
		{"label key", func(r *handoff.CreateRequest) { r.Labels = map[string]string{"Env": "prod"} }, "invalid_labels"},
		{"callback scheme", func(r *handoff.CreateRequest) { r.CallbackURL = "ftp://x/y" }, "invalid_callback_url"},
		{"callback creds", func(r *handoff.CreateRequest) { r.CallbackURL = "https://u:p@x/y" }, "invalid_callback_url"},
		{"callback loopback", func(r *handoff.CreateRequest) { r.CallbackURL = "http://127.0.0.1:9/cb" }, "callback_url_refused"},
		{"callback metadata", func(r *handoff.CreateRequest) { r.CallbackURL = "http://169.254.169.254/latest" }, "callback_url_refused"},
		{"callback localhost", func(r *handoff.CreateRequest) { r.CallbackURL = "http://localhost/cb" }, "callback_url_refused"},
		{"callback name", func(r *handoff.CreateRequest) { r.CallbackURL = "https://agent.example/cb" }, ""},
		{"short timeout", func(r *handoff.CreateRequest) { r.Timeout = 5 * time.Second }, "invalid_timeout"},
		{"long timeout", func(r *handoff.CreateRequest) { r.Timeout = 25 * time.Hour }, "timeout_too_long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.edit(&r)
			_, err := e.svc.Create(context.Background(), e.dev, r, "")
			if got := code(err); got != c.want {
				t.Fatalf("code = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPeopleCannotCreateAndAgentsCannotDecide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	if _, err := e.svc.Create(ctx, e.member, handoff.CreateRequest{Action: "deploy", Title: "x"}, ""); code(err) != "agents_only" {
		t.Fatalf("person create: %v", err)
	}
	c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Decide(ctx, e.dev, c.Handoff.ID, "approve", "", "api"); code(err) != "people_only" {
		t.Fatalf("agent decide: %v", err)
	}
	if _, err := e.svc.Decide(ctx, e.viewer, c.Handoff.ID, "approve", "", "api"); code(err) != "role_cannot_decide" {
		t.Fatalf("viewer decide: %v", err)
	}
}

// TestExpiry drives the clock: an expiry job that runs early changes nothing; once due, the handoff
// is expired (not denied), and a later decision is refused.
func TestExpiry(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, d)
			ctx := context.Background()
			c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "x", Timeout: time.Minute}, "")
			if err != nil {
				t.Fatal(err)
			}
			e.clock.add(59 * time.Second)
			if _, err := e.svc.Expire(ctx, e.dev.OrgID, c.Handoff.ID); err == nil {
				t.Fatal("expired a handoff before its time")
			}
			e.clock.add(time.Second)
			h, err := e.svc.Expire(ctx, e.dev.OrgID, c.Handoff.ID)
			if err != nil || h.Status != store.StatusExpired || h.Decision == nil || h.Decision.Channel != "system" {
				t.Fatalf("expire: %+v %v", h, err)
			}
			if _, err := e.svc.Decide(ctx, e.member, c.Handoff.ID, "approve", "", "api"); code(err) != "already_final" {
				t.Fatalf("decide after expiry: %v", err)
			}
			// A second expiry run (a retried job) is a quiet no-op.
			if h, err := e.svc.Expire(ctx, e.dev.OrgID, c.Handoff.ID); err != nil || h.Status != store.StatusExpired {
				t.Fatalf("second expire: %+v %v", h, err)
			}
		})
	}
}

// readSignal is a store that reports every transaction the service ends, so a test knows when a
// waiter has read the handoff: Wait subscribes before it reads, so from then on only a notification
// (or the drain, or the re-read a minute later) can end it.
type readSignal struct {
	store.Store
	done chan struct{}
}

func (s readSignal) InOrg(ctx context.Context, orgID string, fn func(tx store.OrgTx) error) error {
	err := s.Store.InOrg(ctx, orgID, fn)
	s.done <- struct{}{}
	return err
}

func (s readSignal) ReadOrg(ctx context.Context, orgID string, fn func(tx store.OrgTx) error) error {
	err := s.Store.ReadOrg(ctx, orgID, fn)
	s.done <- struct{}{}
	return err
}

// TestWaitWakesOnDecisionAndOnDrain proves the wake-ups themselves end a wait: waiters re-read only
// once a minute, and the test acts only after the waiter's own read found the handoff pending. With
// the publish in finish removed, the decided waiter stays blocked and the test fails.
func TestWaitWakesOnDecisionAndOnDrain(t *testing.T) {
	t.Parallel()
	reads := make(chan struct{}, 16)
	e := newEnvWith(t, "sqlite", time.Minute, func(s store.Store) store.Store { return readSignal{s, reads} })
	ctx := context.Background()
	c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing else runs on this service, so the next transaction to end is the waiter's read.
	<-reads
	if len(reads) != 0 {
		t.Fatalf("%d transactions besides Create's", len(reads))
	}
	type waited struct {
		h   store.Handoff
		err error
	}
	wait := func(drain <-chan struct{}) <-chan waited {
		done := make(chan waited, 1)
		go func() {
			h, err := e.svc.Wait(ctx, e.dev, c.Handoff.ID, 30*time.Second, drain)
			done <- waited{h, err}
		}()
		select {
		case <-reads:
		case w := <-done:
			t.Fatalf("the wait returned before its first read was seen: %+v %v", w.h.Status, w.err)
		}
		return done
	}

	drain := make(chan struct{})
	done := wait(drain)
	close(drain)
	select {
	case w := <-done:
		if w.err != nil || w.h.Status != store.StatusPending {
			t.Fatalf("drained wait: %s, %v", w.h.Status, w.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end the wait")
	}

	done = wait(nil)
	start := time.Now()
	if _, err := e.svc.Decide(ctx, e.member, c.Handoff.ID, "deny", "no", "api"); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-done:
		if w.err != nil || w.h.Status != store.StatusDenied || w.h.Decision.Comment != "no" {
			t.Fatalf("wait: %+v, %v", w.h, w.err)
		}
		t.Logf("waiter woke %v after the decision", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the decision's notification did not wake the waiter within 10s (it re-reads only once a minute)")
	}
}

func TestPayloadSealedAndBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	const secret = "CANARY-PAYLOAD-7f3a"
	c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "shell.exec", Title: "x",
		Payload: &handoff.Payload{Kind: "command", Content: "echo " + secret}}, "")
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	err = e.store.ReadOrg(ctx, e.dev.OrgID, func(tx store.OrgTx) (err error) {
		sealed, err = tx.HandoffPayload(ctx, c.Handoff.ID)
		return err
	})
	if err != nil || len(sealed) == 0 || strings.Contains(string(sealed), secret) {
		t.Fatalf("the stored payload: %d bytes, %v; want sealed, not in the clear", len(sealed), err)
	}
	// As a read returns it: without the bytes, which Payload reads itself.
	h, err := e.svc.Get(ctx, e.member, c.Handoff.ID)
	if err != nil || h.PayloadSealed != nil || !h.PayloadKept {
		t.Fatalf("read: sealed %d bytes, kept %v, %v; want no bytes and kept", len(h.PayloadSealed), h.PayloadKept, err)
	}
	p, err := e.svc.Payload(ctx, h)
	if err != nil || p.Content != "echo "+secret {
		t.Fatalf("open payload: %+v %v", p, err)
	}
	// The same sealed bytes on another handoff do not open: the handoff's id is bound in.
	moved := h
	moved.ID, moved.PayloadSealed = "0190d6b0-0000-7000-8000-000000000000", sealed
	if err := e.store.InOrg(ctx, e.dev.OrgID, func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, moved) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Payload(ctx, moved); err == nil || !strings.Contains(err.Error(), "open payload") {
		t.Fatalf("a sealed payload under another handoff's id: %v, want it not to open", err)
	}
}

func TestIdempotencyRace(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, d)
			ctx := context.Background()
			var wg sync.WaitGroup
			ids := make(chan string, 10)
			errs := make(chan error, 10)
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "same"}, "key-1")
					if err != nil {
						errs <- err
						return
					}
					ids <- c.Handoff.ID
				}()
			}
			wg.Wait()
			close(ids)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for id := range ids {
				seen[id] = true
			}
			if len(seen) != 1 {
				t.Fatalf("%d distinct handoffs for one key", len(seen))
			}
			_, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "different"}, "key-1")
			if code(err) != "idempotency_key_reused" {
				t.Fatalf("reuse with another body: %v", err)
			}
		})
	}
}

// readGate is a store whose reads (ReadOrg) report that they ran, and fail as unavailable once closed.
type readGate struct {
	store.Store
	reads  chan struct{}
	closed *atomic.Bool
}

func (s readGate) ReadOrg(ctx context.Context, orgID string, fn func(tx store.OrgTx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("gate closed: %w", store.ErrUnavailable)
	}
	err := s.Store.ReadOrg(ctx, orgID, fn)
	s.reads <- struct{}{}
	return err
}

// TestWaitTakesLocalDecision: a decision made by this process answers its waiters with what it
// committed, without a read: with reads failing after the waiter's first, the wait still returns the
// decision at once. Were it to re-read, it would hold on the failing read until its timeout and
// answer pending.
func TestWaitTakesLocalDecision(t *testing.T) {
	t.Parallel()
	reads, closed := make(chan struct{}, 16), &atomic.Bool{}
	e := newEnvWith(t, "sqlite", time.Minute, func(s store.Store) store.Store { return readGate{s, reads, closed} })
	ctx := context.Background()
	c, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	type waited struct {
		h   store.Handoff
		err error
	}
	done := make(chan waited, 1)
	go func() {
		h, err := e.svc.Wait(ctx, e.dev, c.Handoff.ID, 5*time.Second, nil)
		done <- waited{h, err}
	}()
	<-reads // the waiter's own read: it found the handoff pending and waits for a wake-up
	closed.Store(true)
	if _, err := e.svc.Decide(ctx, e.member, c.Handoff.ID, "deny", "not now", "api"); err != nil {
		t.Fatal(err)
	}
	w := <-done
	if w.err != nil || w.h.Status != store.StatusDenied || w.h.Decision == nil || w.h.Decision.Comment != "not now" ||
		w.h.Decision.ByID != e.member.ID || w.h.ID != c.Handoff.ID {
		t.Fatalf("wait: %+v, %v; want the committed denial", w.h, w.err)
	}
}
