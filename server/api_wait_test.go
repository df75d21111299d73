package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testredis"
	"github.com/ony-ai/ony/internal/testserver"
)

// The server re-reads a waited-on handoff every WaitRecheck even without a notification; TestWait's
// instance sets it to a minute. A waiter that is still blocked 300 ms after it started, and then
// returns within maxLatency of the decision, was woken by the notification, not by that re-read. The
// bound is loose on purpose: on SQLite under -race a waiter's re-read queues behind the escalation
// jobs' writes; how fast the wake-up is, is measured (and logged), not asserted tightly.
const (
	settle      = 300 * time.Millisecond
	maxLatency  = 10 * time.Second
	waitRecheck = time.Minute
)

type waitResult struct {
	h   *client.Handoff
	err error
	at  time.Time
}

// waitInBackground starts a single long-poll and checks it is still blocked after settle.
func waitInBackground(t *testing.T, c *client.Client, id string, timeout time.Duration) <-chan waitResult {
	t.Helper()
	done := make(chan waitResult, 1)
	go func() {
		h, err := c.WaitOnce(context.Background(), id, timeout)
		done <- waitResult{h, err, time.Now()}
	}()
	select {
	case r := <-done:
		t.Fatalf("the long-poll returned before any decision: %+v %v", r.h, r.err)
	case <-time.After(settle):
	}
	return done
}

// decideAndMeasure decides id through c and returns how long after the decision was answered the
// waiter returned (zero if it returned first: the wake-up is published before the answer is written),
// with what it returned. The decide request's own time is not the long-poll's to answer for: on
// SQLite it queues behind the escalation jobs' writes.
func decideAndMeasure(t *testing.T, decider *caller, id, option string, done <-chan waitResult) (time.Duration, *client.Handoff) {
	t.Helper()
	decider.do("POST", "/v1/handoffs/"+id+"/decide", map[string]string{"option": option}).handoff(t, http.StatusOK)
	t0 := time.Now()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("wait: %v", r.err)
		}
		return max(0, r.at.Sub(t0)), r.h
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not return within 10s of the decision")
	}
	return 0, nil
}

// TestWait covers the long-poll: woken by a decision, timing out pending, bounds on its timeout, and the
// client's reconnecting Wait.
func TestWait(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := testserver.Start(t, testserver.Options{Dialect: d, WaitRecheck: waitRecheck}).Seed(t)
		ag := in.Agent(t)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))

		t.Run("woken by a decision", func(t *testing.T) {
			var worst time.Duration
			var seen []time.Duration
			for i, opt := range []string{"approve", "deny", "approve"} {
				h := mustCreate(t, ag, basicRequest("wait for me"))
				done := waitInBackground(t, ag, h.ID, 30*time.Second)
				lat, got := decideAndMeasure(t, member, h.ID, opt, done)
				want := map[string]string{"approve": "approved", "deny": "denied"}[opt]
				if got.Status != want || got.Decision == nil || got.Decision.Option != opt || got.Decision.By == nil || got.Decision.By.ID != in.Member.ID {
					t.Fatalf("round %d: waiter got %+v", i, got)
				}
				seen = append(seen, lat)
				worst = max(worst, lat)
			}
			t.Logf("%s: wait returned %v after the decision was answered", d, seen)
			if worst >= maxLatency {
				t.Fatalf("a waiter took %v (>= %v) to see the decision", worst, maxLatency)
			}
		})

		t.Run("person waits too", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("a person waits"))
			viewer := person(t, in, in.Viewer)
			done := waitInBackground(t, viewer, h.ID, 30*time.Second)
			lat, got := decideAndMeasure(t, member, h.ID, "approve", done)
			if got.Status != "approved" || lat >= maxLatency {
				t.Fatalf("viewer's wait: %s after %v", got.Status, lat)
			}
		})

		t.Run("times out pending", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("nobody answers"))
			for _, q := range []string{"?timeout=1s", "?timeout=1"} {
				t0 := time.Now()
				got := agentRaw(t, in).do("GET", "/v1/handoffs/"+h.ID+"/wait"+q, nil).handoff(t, http.StatusOK)
				el := time.Since(t0)
				if got.Status != "pending" || got.Decision != nil || got.ID != h.ID {
					t.Fatalf("%s: %+v", q, got)
				}
				if el < 900*time.Millisecond || el > 3*time.Second {
					t.Fatalf("%s: returned after %v, want about 1s", q, el)
				}
			}
		})

		t.Run("timeout above the maximum is clamped, not refused", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("long timeout"))
			done := make(chan resp, 1)
			go func() { done <- agentRaw(t, in).do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=500s", nil) }()
			select {
			case r := <-done:
				t.Fatalf("returned early: %d %s", r.Status, r.Body)
			case <-time.After(settle):
			}
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
			select {
			case r := <-done:
				if got := r.handoff(t, http.StatusOK); got.Status != "denied" {
					t.Fatalf("status %q", got.Status)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no answer")
			}
		})

		t.Run("bad timeouts", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("bad timeouts"))
			for _, q := range []string{"0", "0s", "500ms", "-5s", "soon", "1.5", "1e3"} {
				agentRaw(t, in).do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout="+q, nil).wantErr(t, http.StatusBadRequest, "invalid_timeout")
			}
		})

		t.Run("final returns at once", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("already decided"))
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
			t0 := time.Now()
			got, err := ag.WaitOnce(ctxT(t), h.ID, 30*time.Second)
			if err != nil || got.Status != "approved" {
				t.Fatalf("%+v %v", got, err)
			}
			if el := time.Since(t0); el > 5*time.Second {
				t.Fatalf("took %v", el)
			}
		})

		t.Run("client Wait", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("client wait"))
			done := make(chan waitResult, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				h, err := ag.Wait(ctx, h.ID)
				done <- waitResult{h, err, time.Now()}
			}()
			select {
			case r := <-done:
				t.Fatalf("returned early: %+v %v", r.h, r.err)
			case <-time.After(settle):
			}
			lat, got := decideAndMeasure(t, member, h.ID, "approve", done)
			if got.Status != "approved" || !got.Final() || got.Decision == nil || lat >= maxLatency {
				t.Fatalf("client Wait: %+v after %v", got, lat)
			}
			// An unknown handoff ends client.Wait with the 404 instead of retrying forever.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := ag.Wait(ctx, "00000000-0000-7000-8000-000000000000")
			wantClientErr(t, err, http.StatusNotFound, "handoff_not_found")
		})
	})
}

// TestCrossReplica runs two instances on one PostgreSQL schema and one Redis namespace: what one
// replica writes the other serves, and a decision on one wakes a long-poll on the other.
func TestCrossReplica(t *testing.T) {
	t.Parallel()
	dbURL := testdb.PostgresURL(t)
	prefix := testredis.Prefix(t)
	opts := testserver.Options{Dialect: "postgres", DatabaseURL: dbURL, Redis: true, RedisPrefix: prefix, WaitRecheck: waitRecheck}
	a := testserver.Start(t, opts).Seed(t)
	b := testserver.Start(t, opts)
	agentA := a.Agent(t)
	agentB, err := client.New(b.URL, a.DeviceToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	memberA := cookieRaw(t, a.URL, session(t, a, a.OrgID, a.Member.ID))
	memberB := cookieRaw(t, b.URL, session(t, a, a.OrgID, a.Member.ID))

	// Created on A, visible on B (by id and in lists).
	h := mustCreate(t, agentA, basicRequest("made on A"))
	got, err := agentB.Get(ctxT(t), h.ID)
	if err != nil || got.ID != h.ID || got.Title != "made on A" || !got.CreatedAt.Equal(h.CreatedAt) || got.Risk != h.Risk {
		t.Fatalf("B reads %+v, %v", got, err)
	}
	if ids := listIDs(memberB.do("GET", "/v1/handoffs?status=pending", nil).list(t)); len(ids) != 1 || ids[0] != h.ID {
		t.Fatalf("B lists %v", ids)
	}

	var lats []time.Duration
	// Wait on B, decide on A; then the other way round.
	for i, dir := range []struct {
		waiter  *client.Client
		decider *caller
	}{{agentB, memberA}, {agentA, memberB}, {agentB, memberA}} {
		h := h
		if i > 0 {
			h = mustCreate(t, agentA, basicRequest("another"))
		}
		done := waitInBackground(t, dir.waiter, h.ID, 30*time.Second)
		lat, got := decideAndMeasure(t, dir.decider, h.ID, "approve", done)
		if got.Status != "approved" || got.Decision == nil || got.Decision.By.ID != a.Member.ID {
			t.Fatalf("round %d: waiter got %+v", i, got)
		}
		lats = append(lats, lat)
		if lat >= maxLatency {
			t.Fatalf("round %d: the other replica's waiter took %v", i, lat)
		}
	}
	t.Logf("cross-replica: wait returned %v after the decision was answered", lats)

	// A handoff created on B and cancelled on B is final on A.
	hb := mustCreate(t, agentB, basicRequest("made on B"))
	if _, err := agentB.Cancel(ctxT(t), hb.ID, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if got, err := agentA.Get(ctxT(t), hb.ID); err != nil || got.Status != "cancelled" {
		t.Fatalf("A reads %+v %v", got, err)
	}
	// And a second decision through the other replica still loses.
	memberB.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "deny"}).wantErr(t, http.StatusConflict, "already_final")
}

// TestExpiry lets a handoff with the minimum timeout run out. It takes the timeout's 10 s.
func TestExpiry(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, allowPrivateCallbacks)
		rcv := newReceiver(t, 0)
		ag := in.Agent(t)
		h, _, err := ag.Create(ctxT(t), client.CreateRequest{Action: "db.migrate", Title: "Run migration 42",
			Timeout: 10 * time.Second, CallbackURL: rcv.url("/expired")}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := h.ExpiresAt.Sub(h.CreatedAt); got != 10*time.Second {
			t.Fatalf("lifetime %v", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got, err := ag.Wait(ctx, h.ID)
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		late := time.Since(h.ExpiresAt)
		t.Logf("%s: expired %v after expires_at", d, late)
		dv := got.Decision
		if got.Status != "expired" || dv == nil || dv.Approved || dv.Option != "" || dv.Channel != "system" || dv.By != nil || dv.Outcome != "expired" {
			t.Fatalf("expired handoff: %+v / %+v", got, dv)
		}
		if dv.DecidedAt.Before(h.ExpiresAt) {
			t.Fatalf("expired at %v, before expires_at %v", dv.DecidedAt, h.ExpiresAt)
		}
		// The raw view has no "by" at all.
		raw := agentRaw(t, in).do("GET", "/v1/handoffs/"+h.ID, nil)
		if dec, _ := raw.object(t)["decision"].(map[string]any); dec == nil || dec["by"] != nil || dec["option"] != nil {
			t.Fatalf("raw expired decision: %s", raw.Body)
		}
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		e := member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).wantErr(t, http.StatusConflict, "already_final")
		if e.Message != "this handoff is already expired" {
			t.Errorf("message %q", e.Message)
		}
		_, err = ag.Cancel(ctxT(t), h.ID, "")
		wantClientErr(t, err, http.StatusConflict, "already_final")
		if ids := listIDs(member.do("GET", "/v1/handoffs?status=expired", nil).list(t)); len(ids) != 1 || ids[0] != h.ID {
			t.Errorf("expired list %v", ids)
		}
		// The agent is told by callback too.
		c := rcv.next(t, 10*time.Second)
		cb, err := client.VerifyCallback(in.DeviceToken, c.header, c.body, time.Now())
		if err != nil || cb.Status != "expired" || c.header.Get("webhook-id") != "msg_"+h.ID+"_expired" {
			t.Fatalf("expiry callback: %+v %v %q", cb, err, c.header.Get("webhook-id"))
		}
	})
}
