package server_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/netguard/netguardtest"
	"github.com/ony-ai/ony/internal/testserver"
)

// receiver stands in for an agent's callback endpoint.
type receiver struct {
	srv *httptest.Server
	ch  chan captured

	mu       sync.Mutex
	failures int // answer this many first requests with 500
	got      []captured
}

type captured struct {
	method, path string
	header       http.Header
	body         []byte
	at           time.Time
	status       int
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	t.Helper()
	r := &receiver{ch: make(chan captured, 64), failures: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		c := captured{method: req.Method, path: req.URL.RequestURI(), header: req.Header.Clone(), body: body, at: time.Now(), status: http.StatusOK}
		r.mu.Lock()
		if r.failures > 0 {
			r.failures--
			c.status = http.StatusInternalServerError
		}
		r.got = append(r.got, c)
		r.mu.Unlock()
		w.WriteHeader(c.status)
		r.ch <- c
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

func (r *receiver) next(t *testing.T, within time.Duration) captured {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(within):
		t.Fatalf("no callback within %v", within)
	}
	return captured{}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// allowPrivateCallbacks lets callbacks reach the receivers these tests run on 127.0.0.1, as an
// operator running Ony and its agents on one machine would.
func allowPrivateCallbacks(c *config.Config) { c.Callbacks.AllowPrivate = true }

// TestCallbacks: a final state is POSTed to the callback URL, signed, without the payload, and retried
// when the receiver fails.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, allowPrivateCallbacks)
		ag := in.Agent(t)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		canary := "CALLBACK_CANARY_" + randHex(8)
		other := secondDevice(t, in, in.OrgID)

		ok := newReceiver(t, 0)
		flaky := newReceiver(t, 1)
		cancelled := newReceiver(t, 0)
		create := func(title, cb string) *client.Handoff {
			return mustCreate(t, ag, client.CreateRequest{Action: "shell.exec", Title: title, CallbackURL: cb,
				Payload: &client.Payload{Kind: "command", Content: "curl https://x.example/?k=" + canary}})
		}
		hOK := create("decided, delivered", ok.url("/hooks/ony?agent=7"))
		hFlaky := create("decided, retried", flaky.url("/hook"))
		hCancel := create("cancelled", cancelled.url("/hook"))
		hNone := mustCreate(t, ag, basicRequest("no callback"))

		t0 := time.Now()
		member.do("POST", "/v1/handoffs/"+hOK.ID+"/decide", map[string]string{"option": "approve", "comment": "go"}).handoff(t, http.StatusOK)
		member.do("POST", "/v1/handoffs/"+hFlaky.ID+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
		member.do("POST", "/v1/handoffs/"+hNone.ID+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
		if _, err := ag.Cancel(ctxT(t), hCancel.ID, "obsolete"); err != nil {
			t.Fatal(err)
		}

		// verify checks one delivery and returns the handoff it carries.
		verify := func(c captured, h *client.Handoff, status, path string) *client.Handoff {
			t.Helper()
			if c.method != http.MethodPost || c.path != path {
				t.Errorf("callback %s %s, want POST %s", c.method, c.path, path)
			}
			if ct := c.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if want := "msg_" + h.ID + "_" + status; c.header.Get("webhook-id") != want {
				t.Errorf("webhook-id %q, want %q", c.header.Get("webhook-id"), want)
			}
			if c.header.Get("Authorization") != "" || strings.Contains(c.header.Get("Cookie"), "ony") {
				t.Errorf("callback carries credentials")
			}
			got, err := client.VerifyCallback(in.DeviceToken, c.header, c.body, time.Now())
			if err != nil {
				t.Fatalf("VerifyCallback: %v", err)
			}
			if got.ID != h.ID || got.Status != status || got.Decision == nil {
				t.Errorf("callback carries %+v", got)
			}
			if strings.Contains(string(c.body), canary) || strings.Contains(string(c.body), "curl") {
				t.Errorf("callback shows the payload: %s", c.body)
			}
			if strings.Contains(string(c.body), "callback_url") || strings.Contains(string(c.body), "/hook") {
				t.Errorf("callback shows the callback URL: %s", c.body)
			}
			if got.Payload == nil || got.Payload.Kind != "command" {
				t.Errorf("callback payload view %+v", got.Payload)
			}
			return got
		}

		c := ok.next(t, 10*time.Second)
		t.Logf("%s: callback delivered %v after the decision", d, c.at.Sub(t0))
		got := verify(c, hOK, "approved", "/hooks/ony?agent=7")
		if got.Decision.Option != "approve" || !got.Decision.Approved || got.Decision.Comment != "go" || got.Decision.By.ID != in.Member.ID {
			t.Errorf("decision %+v", got.Decision)
		}

		// Tampering with anything signed, or the wrong key, fails verification.
		tampered := bytes.Replace(c.body, []byte(`"approved"`), []byte(`"denied"`), 1)
		if bytes.Equal(tampered, c.body) {
			t.Fatal("tamper did nothing")
		}
		if _, err := client.VerifyCallback(in.DeviceToken, c.header, tampered, time.Now()); err == nil {
			t.Error("tampered body verified")
		}
		if _, err := client.VerifyCallback(in.DeviceToken, c.header, append(bytes.Clone(c.body), ' '), time.Now()); err == nil {
			t.Error("extended body verified")
		}
		if _, err := client.VerifyCallback(other.Token, c.header, c.body, time.Now()); err == nil {
			t.Error("another device's token verified the callback")
		}
		h2 := c.header.Clone()
		h2.Set("webhook-id", "msg_"+hOK.ID+"_denied")
		if _, err := client.VerifyCallback(in.DeviceToken, h2, c.body, time.Now()); err == nil {
			t.Error("changed webhook-id verified")
		}
		if _, err := client.VerifyCallback(in.DeviceToken, c.header, c.body, time.Now().Add(10*time.Minute)); err == nil {
			t.Error("a stale callback verified")
		}

		cc := cancelled.next(t, 10*time.Second)
		if got := verify(cc, hCancel, "cancelled", "/hook"); got.Decision.By == nil || got.Decision.By.Kind != "device" || got.Decision.Comment != "obsolete" {
			t.Errorf("cancel callback decision %+v", got.Decision)
		}

		// The flaky receiver fails the first delivery; the retry comes with the same id.
		first := flaky.next(t, 10*time.Second)
		if first.status != http.StatusInternalServerError {
			t.Fatalf("first delivery answered %d", first.status)
		}
		verify(first, hFlaky, "denied", "/hook")
		second := flaky.next(t, 15*time.Second)
		t.Logf("%s: retry came %v after the failed delivery", d, second.at.Sub(first.at))
		verify(second, hFlaky, "denied", "/hook")
		if first.header.Get("webhook-id") != second.header.Get("webhook-id") {
			t.Errorf("webhook-id changed across retries: %q, %q", first.header.Get("webhook-id"), second.header.Get("webhook-id"))
		}

		// By now (seconds after the decisions) nothing was delivered twice.
		if n := ok.count(); n != 1 {
			t.Errorf("the healthy receiver got %d deliveries", n)
		}
		if n := cancelled.count(); n != 1 {
			t.Errorf("the cancel receiver got %d deliveries", n)
		}
		if n := flaky.count(); n != 2 {
			t.Errorf("the flaky receiver got %d deliveries", n)
		}
	})
}

// callbackJob waits until the callback job of handoff id is finished one way or another and returns
// its state and attempt count. A job that is waiting to retry is returned at once: that is the
// answer a refused delivery must never give.
func callbackJob(t *testing.T, in *testserver.Instance, id string) (state string, attempt int) {
	t.Helper()
	db := in.App.Store.(interface{ DB() *sql.DB }).DB()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := db.QueryContext(ctxT(t), `SELECT state, attempt, args FROM river_job WHERE kind = 'handoff.callback'`)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for rows.Next() {
			var args []byte
			if err := rows.Scan(&state, &attempt, &args); err != nil {
				t.Fatal(err)
			}
			if found = strings.Contains(string(args), id); found {
				break
			}
		}
		rows.Close()
		if found && state != "available" && state != "running" && state != "scheduled" && state != "pending" {
			return state, attempt
		}
		if time.Now().After(deadline) {
			t.Fatalf("the callback job of %s is still %q (found %v)", id, state, found)
		}
		time.Sleep(50 * time.Millisecond) // polling for the outcome, not waiting for it to settle
	}
}

// TestCallbackGuard: with the defaults a callback never reaches a receiver on 127.0.0.1 — refused at
// create time when the URL says loopback, and when dialled when a name resolves there, after which the
// delivery is given up at its first attempt and logged without its URL. The operator's allow-list lets
// both through.
func TestCallbackGuard(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		rcv := newReceiver(t, 0) // on 127.0.0.1
		port := rcv.srv.Listener.Addr().(*net.TCPAddr).Port
		res := netguardtest.Resolver(map[string][]string{"agent.test": {"127.0.0.1"}})
		secret := "CB_SECRET_" + randHex(8)
		named := fmt.Sprintf("http://agent.test:%d/hook?k=%s", port, secret)
		literal := rcv.url("/hook?k=" + secret)

		var logs syncBuffer
		in := testserver.Start(t, testserver.Options{Dialect: d, Resolver: res,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Seed(t)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))

		r := agentRaw(t, in).do("POST", "/v1/handoffs", map[string]any{"action": "deploy", "title": "literal", "callback_url": literal})
		e := r.wantErr(t, http.StatusBadRequest, "callback_url_refused")
		if strings.Contains(string(r.Body), secret) || !strings.Contains(e.Message, "loopback") {
			t.Errorf("refusal: %s", r.Body)
		}

		h := mustCreate(t, in.Agent(t), client.CreateRequest{Action: "deploy", Title: "named", CallbackURL: named})
		member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
		state, attempt := callbackJob(t, in, h.ID)
		if state != "cancelled" || attempt != 1 {
			t.Errorf("the refused callback job is %s after %d attempts, want cancelled after 1", state, attempt)
		}
		if n := rcv.count(); n != 0 {
			t.Errorf("the receiver on 127.0.0.1 got %d requests", n)
		}
		t.Logf("%s: refused callback: job %s after %d attempt(s), %d requests reached 127.0.0.1", d, state, attempt, rcv.count())
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "callback refused") {
				line = l
			}
		}
		if !strings.Contains(line, "handoff="+h.ID) || !strings.Contains(line, "address=127.0.0.1") || !strings.Contains(line, "range=loopback") {
			t.Errorf("refusal log line %q", line)
		}
		for _, leak := range []string{secret, "agent.test", "/hook"} {
			if strings.Contains(logs.String(), leak) {
				t.Errorf("the logs carry %q", leak)
			}
		}

		// The operator allows the loopback: both URLs are accepted and delivered.
		allowed := testserver.Start(t, testserver.Options{Dialect: d, Resolver: res, Configure: func(c *config.Config) {
			c.Callbacks.AllowCIDRs = []string{"127.0.0.1/32"}
		}}).Seed(t)
		amember := cookieRaw(t, allowed.URL, session(t, allowed, allowed.OrgID, allowed.Member.ID))
		for _, u := range []string{literal, named} {
			h := mustCreate(t, allowed.Agent(t), client.CreateRequest{Action: "deploy", Title: "allowed", CallbackURL: u})
			amember.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
			c := rcv.next(t, 15*time.Second)
			if got, err := client.VerifyCallback(allowed.DeviceToken, c.header, c.body, time.Now()); err != nil || got.ID != h.ID {
				t.Errorf("allowed callback: %+v %v", got, err)
			}
		}
	})
}
