package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testredis"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// readyz returns /readyz's status and body.
func readyz(t *testing.T, in *testserver.Instance) (int, map[string]string) {
	t.Helper()
	r := anon(t, in.URL).do("GET", "/readyz", nil)
	var m map[string]string
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("readyz body: %v: %s", err, r.Body)
	}
	return r.Status, m
}

// awaitCoordination polls /readyz until coordination reports want.
func awaitCoordination(t *testing.T, in *testserver.Instance, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, m := readyz(t, in)
		if m["coordination"] == want {
			if status != http.StatusOK || m["database"] != "ok" {
				t.Fatalf("readyz with coordination %s: %d %v, want 200 with the database ok", want, status, m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still says %d %v, want coordination %q", status, m, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servesDegraded checks a replica whose Redis is down: still ready, saying coordination is degraded;
// people can sign in; the failed-login limit (5 per account) still holds on this replica.
func servesDegraded(t *testing.T, in *testserver.Instance) {
	t.Helper()
	status, m := readyz(t, in)
	if status != http.StatusOK || m["database"] != "ok" || m["coordination"] != "degraded" {
		t.Fatalf("readyz during the outage: %d %v, want 200 with coordination degraded", status, m)
	}
	login := func(email, password string) resp {
		return anon(t, in.URL).do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password})
	}
	admin := addUser(t, in, in.OrgID, store.RoleAdmin, "Ada Admin")
	if r := login(admin.Email, in.Password); r.Status != http.StatusOK {
		t.Fatalf("login during the outage: %d %s", r.Status, r.Body)
	}
	member := addUser(t, in, in.OrgID, store.RoleMember, "Mia Member")
	for i := range 5 {
		login(member.Email, "wrong "+strconv.Itoa(i)).wantErr(t, http.StatusUnauthorized, "invalid_credentials")
	}
	login(member.Email, in.Password).wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
}

// TestRedisOutageSQLite: a single SQLite instance with Redis coordination serves through an outage and
// reports coordination ok again once Redis is back.
func TestRedisOutageSQLite(t *testing.T) {
	t.Parallel()
	srv := testredis.StartServer(t)
	prefix := testredis.Prefix(t)
	in := testserver.Start(t, testserver.Options{
		Configure: func(c *config.Config) { c.Redis.URL, c.Redis.Prefix = config.Secret(srv.URL), prefix }}).Seed(t)
	srv.Stop(t)
	servesDegraded(t, in)
	srv.Start(t)
	awaitCoordination(t, in, "ok")
}

// TestRedisOutage runs two replicas on one database and a Redis of the test's own, which it stops and
// starts again. While Redis is away both replicas stay ready (coordination "degraded"), people can sign
// in, the failed-login limit still holds on each replica, and a long-poll on one replica waits on; once
// Redis is back the replicas recover by themselves: the decision made meanwhile reaches that long-poll,
// and later decisions wake the other replica's waiters at once.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testredis.StartServer(t)
	prefix := testredis.Prefix(t)
	opts := testserver.Options{Dialect: "postgres", DatabaseURL: testdb.PostgresURL(t), WaitRecheck: waitRecheck,
		Configure: func(c *config.Config) { c.Redis.URL, c.Redis.Prefix = config.Secret(srv.URL), prefix }}
	a := testserver.Start(t, opts).Seed(t)
	b := testserver.Start(t, opts)
	for _, in := range []*testserver.Instance{a, b} {
		if status, m := readyz(t, in); status != http.StatusOK || m["coordination"] != "ok" {
			t.Fatalf("readyz before the outage: %d %v", status, m)
		}
	}
	agentA := a.Agent(t)
	agentB, err := client.New(b.URL, a.DeviceToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	memberA := cookieRaw(t, a.URL, session(t, a, a.OrgID, a.Member.ID))

	srv.Stop(t)
	servesDegraded(t, a)
	if status, m := readyz(t, b); status != http.StatusOK || m["database"] != "ok" || m["coordination"] != "degraded" {
		t.Fatalf("readyz on B during the outage: %d %v, want 200 with coordination degraded", status, m)
	}

	// A long-poll on B waits on through the outage; a decision on A reaches only A's own waiters.
	during := mustCreate(t, agentA, basicRequest("decided during the outage"))
	done := waitInBackground(t, agentB, during.ID, 60*time.Second)
	memberA.do("POST", "/v1/handoffs/"+during.ID+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)

	restarted := time.Now()
	srv.Start(t)
	select {
	case r := <-done:
		if r.err != nil || r.h.Status != "approved" {
			t.Fatalf("B's long-poll: %+v %v", r.h, r.err)
		}
		if r.at.Before(restarted) {
			t.Fatalf("B's long-poll returned before Redis came back: nothing should have woken it")
		}
		t.Logf("B's long-poll returned %v after Redis came back", r.at.Sub(restarted))
	case <-time.After(20 * time.Second):
		t.Fatal("B's long-poll did not hear of the decision within 20s of Redis coming back")
	}
	for _, in := range []*testserver.Instance{a, b} {
		awaitCoordination(t, in, "ok")
	}
	t.Logf("both replicas report coordination ok %v after Redis came back", time.Since(restarted))

	// Decisions on A wake waiters on B again.
	after := mustCreate(t, agentA, basicRequest("decided after the outage"))
	lat, got := decideAndMeasure(t, memberA, after.ID, "approve", waitInBackground(t, agentB, after.ID, 30*time.Second))
	if got.Status != "approved" || lat >= maxLatency {
		t.Fatalf("after the restart B's waiter got %+v after %v", got, lat)
	}
	t.Logf("after the restart: B's waiter returned %v after the decision on A was answered", lat)
}
