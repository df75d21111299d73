package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/org"
)

// TestStreamBounds: streams are capped, and Drain ends the open ones at once.
func TestStreamBounds(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	a := e.in.App
	c, err := console.New(console.Deps{Handoffs: a.Handoffs, Escalation: a.Escalation, Audit: a.Audit, Sessions: a.Sessions,
		Org: org.Service{Store: a.Store, Audit: a.Audit}, Store: a.Store, Keyring: a.Keyring},
		console.Config{MaxStreams: 1, StreamPoll: 50 * time.Millisecond, StreamHeartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sess := e.in.Session(t, e.in.OrgID, e.in.Viewer.ID)
	open := func() *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/console/inbox/events", nil)
		req.AddCookie(&http.Cookie{Name: console.SessionCookieName(false), Value: sess})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		res, err := testhttp.Client.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	first := open()
	rd := bufio.NewReader(first.Body)
	for { // wait for a heartbeat so the stream is surely counted
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, ": beat") {
			break
		}
	}
	if second := open(); second.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream: %d", second.StatusCode)
	}
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := rd.ReadString('\n'); err != nil {
				done <- err
				return
			}
		}
	}()
	c.Drain()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not end the stream")
	}
}
