package server_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
)

// lockedBuffer collects an instance's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var sqlText = regexp.MustCompile(`(?i)\b(select\s.+\sfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|set_config)\b`)

// TestDatabaseDown cuts the connection to PostgreSQL under a running instance (a proxy the test
// controls; the shared server keeps running): every request that needs the database answers 503
// "unavailable" with Retry-After at once, a long-poll holds for its timeout instead, and a long-poll
// begun during the outage ends with the decision made once the database is back. Nothing logged
// carries SQL.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	direct := testdb.PostgresURL(t)
	proxy := testdb.NewProxy(t, direct)
	logs := &lockedBuffer{}
	in := testserver.Start(t, testserver.Options{Dialect: "postgres", DatabaseURL: proxy.URL(direct),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Seed(t)
	agent := agentRaw(t, in)
	member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
	h := mustCreate(t, in.Agent(t), basicRequest("before the outage"))

	proxy.Cut()
	cut := time.Now()
	for _, c := range []struct {
		name         string
		who          *caller
		method, path string
		body         any
	}{
		{"create", agent, "POST", "/v1/handoffs", basicRequest("during the outage")},
		{"get", agent, "GET", "/v1/handoffs/" + h.ID, nil},
		{"list", member, "GET", "/v1/handoffs", nil},
		{"decide", member, "POST", "/v1/handoffs/" + h.ID + "/decide", map[string]string{"option": "approve"}},
		{"cancel", agent, "POST", "/v1/handoffs/" + h.ID + "/cancel", nil},
	} {
		start := time.Now()
		r := c.who.do(c.method, c.path, c.body)
		took := time.Since(start)
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "2" {
			t.Errorf("%s while the database is down: %d, Retry-After %q: %s; want 503 with Retry-After 2", c.name, r.Status, r.Header.Get("Retry-After"), r.Body)
			continue
		}
		r.wantErr(t, http.StatusServiceUnavailable, "unavailable")
		t.Logf("%s: 503 after %s", c.name, took.Round(time.Millisecond))
	}

	// A wait that never reaches the database holds for its whole timeout, then says so.
	start := time.Now()
	r := agent.do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=2s", nil)
	held := time.Since(start)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a 2s wait through the outage: %d %s after %s, want 503 with Retry-After", r.Status, r.Body, held)
	}
	if held < 2*time.Second {
		t.Errorf("a 2s wait through the outage answered after %s: it did not hold", held)
	}
	t.Logf("a 2s wait through the outage held %s, then 503", held.Round(time.Millisecond))

	// A wait begun during the outage, answered by the decision made after it.
	type waited struct {
		r   resp
		err error
		at  time.Time
	}
	sent := make(chan struct{})
	done := make(chan waited, 1)
	go func() {
		req, _ := http.NewRequest("GET", in.URL+"/v1/handoffs/"+h.ID+"/wait?timeout=30s", nil)
		req.Header.Set("Authorization", "Bearer "+in.DeviceToken)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) }}))
		res, err := rawHTTP.Do(req)
		if err != nil {
			done <- waited{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		done <- waited{r: resp{Status: res.StatusCode, Header: res.Header, Body: body}, err: err, at: time.Now()}
	}()
	select {
	case <-sent:
	case w := <-done:
		t.Fatalf("the wait failed before it was sent: %v", w.err)
	}
	select {
	case w := <-done:
		t.Fatalf("the wait begun during the outage answered before the database was back: %d %s", w.r.Status, w.r.Body)
	default:
	}
	proxy.Restore()
	t.Logf("database back after %s", time.Since(cut).Round(time.Millisecond))

	// The first request after the outage may meet a pooled connection that died with it; a client
	// retries a 503 as told.
	var decided time.Time
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"})
		if r.Status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if g := r.handoff(t, http.StatusOK); g.Status != "approved" {
			t.Fatalf("decide after the outage: %q", g.Status)
		}
		decided = time.Now()
		break
	}
	select {
	case w := <-done:
		if w.err != nil {
			t.Fatalf("the wait: %v", w.err)
		}
		if g := w.r.handoff(t, http.StatusOK); g.Status != "approved" {
			t.Fatalf("the wait begun during the outage answered %q, want approved", g.Status)
		}
		t.Logf("the wait begun during the outage answered approved %s after the decision", w.at.Sub(decided).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the wait begun during the outage did not answer within 20s of the decision")
	}

	in.Stop(t)
	out := logs.String()
	if m := sqlText.FindString(out); m != "" {
		t.Errorf("the log carries SQL (%q):\n%s", m, out)
	}
	if !bytes.Contains([]byte(out), []byte(`msg="database unavailable"`)) {
		t.Errorf("the log does not say the database was unavailable:\n%s", out)
	}
}
