package main

// End-to-end tests of the escalation engine in the real binary: ladders climbed by durable jobs that
// survive a kill -9, and three replicas sharing one database and one Redis that each send every rung
// exactly once.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testredis"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// delivery is one escalation post a bridge received, signature verified.
type delivery struct {
	id      string // webhook-id
	typ     string // handoff.escalated or handoff.finished
	handoff string
	climb   int
	step    int
	at      time.Time
}

// webhookSink is a bridge that verifies every post the Standard Webhooks way and records it.
type webhookSink struct {
	t      *testing.T
	secret []byte
	URL    string
	ts     *httptest.Server

	mu   sync.Mutex
	got  []delivery
	bad  []string // posts that did not verify or parse
	seen chan struct{}
}

func newWebhookSink(t *testing.T, secret []byte) *webhookSink {
	s := &webhookSink{t: t, secret: secret, seen: make(chan struct{}, 1)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := auth.VerifyWebhook(s.secret, r.Header, body, time.Now(), auth.DefaultWebhookTolerance); err != nil {
			s.reject(fmt.Sprintf("%s %s: %v (webhook-id %q)", r.Method, r.URL.Path, err, r.Header.Get(auth.WebhookIDHeader)))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m webhook.Message
		if err := json.Unmarshal(body, &m); err != nil {
			s.reject(fmt.Sprintf("body does not parse: %v: %s", err, body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, delivery{id: r.Header.Get(auth.WebhookIDHeader), typ: m.Type, handoff: m.Handoff.ID,
			climb: m.Climb, step: m.Step, at: time.Now()})
		s.mu.Unlock()
		select {
		case s.seen <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	s.URL, s.ts = ts.URL, ts
	return s
}

// close stops the bridge once every post made to it has been answered. Called after every server
// that could post has exited, what the bridge holds is then all it will ever get: a duplicate, had
// there been one, is in it.
func (s *webhookSink) close() { s.ts.Close() }

func (s *webhookSink) reject(why string) {
	s.mu.Lock()
	s.bad = append(s.bad, why)
	s.mu.Unlock()
}

// escalated returns the handoff.escalated posts received so far.
func (s *webhookSink) escalated() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery
	for _, d := range s.got {
		if d.typ == "handoff.escalated" {
			out = append(out, d)
		}
	}
	return out
}

func (s *webhookSink) rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// waitFor polls until cond holds on the escalated posts, or fails after d describing what arrived.
func (s *webhookSink) waitFor(d time.Duration, what string, cond func([]delivery) bool) []delivery {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.escalated()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the bridge did not receive %s within %s; it got %d escalation posts: %s", what, d, len(got), summarize(got, 40))
		}
		select {
		case <-s.seen:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// summarize lists deliveries as "climb.step@id" (at most n of them).
func summarize(ds []delivery, n int) string {
	var parts []string
	for i, d := range ds {
		if i == n {
			parts = append(parts, fmt.Sprintf("... and %d more", len(ds)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%d.%d@%s", d.climb, d.step, d.id))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// newWebhookSecret returns a fresh Standard Webhooks secret and its key bytes.
func newWebhookSecret(t *testing.T) (string, []byte) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	key, err := config.WebhookSecretBytes(whsec)
	if err != nil {
		t.Fatal(err)
	}
	return whsec, key
}

// webhookLadder writes a default ladder of n webhook steps, each waiting wait, into a new directory.
func webhookLadder(t *testing.T, n int, wait string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: default\ndefault: true\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: rung%d\n    channels: [webhook]\n    targets: [webhook:sink]\n    wait: %s\n", i, wait)
	}
	b.WriteString("end: wait\n")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "default.yaml"), b.String())
	return dir
}

// sendsView is GET /v1/handoffs/{id}/escalation.
type sendsView struct {
	Ladder string `json:"ladder"`
	Sends  []struct {
		Climb   int    `json:"climb"`
		Step    int    `json:"step"`
		Attempt int    `json:"attempt"`
		Channel string `json:"channel"`
		Target  string `json:"target"`
		State   string `json:"state"`
		Detail  string `json:"detail"`
	} `json:"sends"`
}

func getEscalation(ctx context.Context, t *testing.T, base, token, id string) sendsView {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/handoffs/"+id+"/escalation", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatalf("GET escalation: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET escalation: %d %s", resp.StatusCode, body)
	}
	var v sendsView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET escalation: %v: %s", err, body)
	}
	return v
}

// sentRungs returns the steps whose webhook send is recorded as sent.
func (v sendsView) sentRungs() []int {
	var out []int
	for _, s := range v.Sends {
		if s.Channel == webhook.Kind.Name && s.State == string(store.SendSent) {
			out = append(out, s.Step)
		}
	}
	sort.Ints(out)
	return out
}

// A ladder climbs on after its server is killed with SIGKILL mid-ladder and started again: every rung
// reaches the bridge, each under one webhook-id.
func TestEscalationSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	whsec, key := newWebhookSecret(t)
	sink := newWebhookSink(t, key)
	const rungs, wait = 4, 3 * time.Second
	vars := map[string]string{
		"ONY_DATA_DIR":                  t.TempDir(),
		"ONY_ESCALATION_LADDERS_DIR":    webhookLadder(t, rungs, "3s"),
		"ONY_ESCALATION_WEBHOOKS":       "sink=" + sink.URL,
		"ONY_ESCALATION_WEBHOOK_SECRET": whsec,
		"ONY_JOBS_POLL_INTERVAL":        "50ms",
	}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	agent := newClient(t, srv.URL, b.Token)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy.web", Title: "Ship it"}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	due := func(step int) time.Time { return h.CreatedAt.Add(time.Duration(step) * wait) }
	sink.waitFor(20*time.Second, "rung 1", func(ds []delivery) bool {
		return slices.ContainsFunc(ds, func(d delivery) bool { return d.step == 1 })
	})
	// Kill once rung 1's send is committed as sent, so the kill lands between rungs: rung 2 is then
	// only a scheduled job in the database. (A kill while a send job is running is
	// TestEscalationSIGKILLMidSend's.)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(getEscalation(ctx, t, srv.URL, b.Token, h.ID).sentRungs(), 1) {
		if time.Now().After(deadline) {
			t.Fatal("rung 1 reached the bridge but its send was not recorded as sent within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-srv.done
	killed := time.Now()
	before := sink.escalated()
	t.Logf("killed %s after the handoff was created, with %d rung(s) delivered: %s",
		killed.Sub(h.CreatedAt).Round(time.Millisecond), len(before), summarize(before, 10))
	if slices.ContainsFunc(before, func(d delivery) bool { return d.step == rungs-1 }) {
		t.Fatal("the last rung was delivered before the kill; the test proves nothing (is the machine very slow?)")
	}

	srv2 := startServe(t, vars)
	srv2.waitReady()
	ready := time.Now()
	if out := srv2.Stdout(); strings.TrimSpace(out) != "" {
		t.Errorf("the restarted server printed on stdout (bootstrap must happen once):\n%s", out)
	}
	// River promotes scheduled jobs once this process leads (the dead one's leadership must lapse)
	// and then every 5 s, so late rungs are expected; 40 s leaves room for a loaded machine.
	sink.waitFor(40*time.Second, "all 4 rungs after the restart", func(ds []delivery) bool {
		for step := range rungs {
			if !slices.ContainsFunc(ds, func(d delivery) bool { return d.step == step }) {
				return false
			}
		}
		return true
	})

	// The send rows are unique per (handoff, rung): one each, all sent, none re-attempted.
	deadline = time.Now().Add(10 * time.Second)
	for {
		v := getEscalation(ctx, t, srv2.URL, b.Token, h.ID)
		if slices.Equal(v.sentRungs(), []int{0, 1, 2, 3}) && len(v.Sends) == rungs {
			for _, s := range v.Sends {
				if s.Channel != webhook.Kind.Name || s.Target != "webhook:sink" || s.Attempt != 0 {
					t.Errorf("unexpected send %+v", s)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the escalation timeline is %+v, want 4 webhook sends, all sent", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Only a running server can post: once both have exited (the first was killed) and the bridge has
	// answered every post, a duplicate would be among what it received.
	srv2.stop()
	sink.close()
	mustNotContain(t, "the restarted server's log", srv2.Stderr(), b.Token, whsec)
	got := sink.escalated()

	t.Logf("restart ready %s after the kill", ready.Sub(killed).Round(time.Millisecond))
	for _, d := range got {
		t.Logf("rung %d.%d arrived at +%s, %s after it was due (%s after the restart was ready) id=%s", d.climb, d.step,
			d.at.Sub(h.CreatedAt).Round(time.Millisecond), d.at.Sub(due(d.step)).Round(time.Millisecond),
			d.at.Sub(ready).Round(time.Millisecond), d.id)
	}
	if bad := sink.rejected(); len(bad) > 0 {
		t.Errorf("the bridge rejected %d post(s): %v", len(bad), bad)
	}
	// A kill after the provider accepted a post but before the send was committed makes the retry post
	// again, under the same webhook-id; receivers drop it by that id, as Standard Webhooks prescribes.
	// So a rung may arrive twice, but only ever under one id.
	for step := range rungs {
		var ids []string
		raw := 0
		for _, d := range got {
			if d.step != step {
				continue
			}
			raw++
			if d.climb != 0 || d.handoff != h.ID {
				t.Errorf("rung %d: post for handoff %s climb %d, want handoff %s climb 0", step, d.handoff, d.climb, h.ID)
			}
			if !slices.Contains(ids, d.id) {
				ids = append(ids, d.id)
			}
		}
		want := fmt.Sprintf("%s/0.%d.webhook.webhook:sink.0", h.ID, step)
		switch {
		case raw == 0:
			t.Errorf("rung %d never reached the bridge", step)
		case len(ids) != 1:
			t.Errorf("rung %d arrived under %d webhook-ids %v, want exactly 1", step, len(ids), ids)
		case ids[0] != want:
			t.Errorf("rung %d has webhook-id %q, want %q", step, ids[0], want)
		case raw > 2:
			t.Errorf("rung %d arrived %d times, want at most 2 (one re-send after the kill)", step, raw)
		case raw == 2:
			t.Logf("rung %d arrived twice under the same webhook-id (re-sent after the kill)", step)
		}
	}
}

// Three replicas on one PostgreSQL schema and one Redis: every rung of 300 handoffs reaches the bridge
// exactly once, whichever replica created it and whichever runs its jobs; a decision through one
// replica ends a long-poll on another at once.
//
// Not parallel on purpose: three race-built servers working through 600 posts saturate two cores for
// about 20 s, long enough to break the package's tests with 2-second deadlines (TestHookDeadlineWithdraws,
// TestHookBinary) when they overlap. Run alone, before the parallel tests resume, it costs ~25 s.
func TestEscalationThreeReplicas(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	whsec, key := newWebhookSecret(t)
	sink := newWebhookSink(t, key)
	dbURL := testdb.PostgresURL(t)
	// Replicas share the data directory for the keyring and audit signing keys (the database is
	// PostgreSQL, so nothing else lives there); the first replica creates them.
	vars := map[string]string{
		"ONY_DATA_DIR":                  t.TempDir(),
		"ONY_DATABASE_URL":              dbURL,
		"ONY_REDIS_URL":                 testredis.URL(t),
		"ONY_REDIS_PREFIX":              testredis.Prefix(t),
		"ONY_ESCALATION_LADDERS_DIR":    webhookLadder(t, 2, "1s"),
		"ONY_ESCALATION_WEBHOOKS":       "sink=" + sink.URL,
		"ONY_ESCALATION_WEBHOOK_SECRET": whsec,
		"ONY_JOBS_POLL_INTERVAL":        "50ms",
	}
	a := startServe(t, vars)
	a.waitReady()
	b := parseBootstrap(t, a.Stdout())
	bsrv, csrv := startServe(t, vars), startServe(t, vars)
	bsrv.waitReady()
	csrv.waitReady()
	replicas := []*proc{a, bsrv, csrv}
	for i, r := range replicas[1:] {
		if out := r.Stdout(); strings.TrimSpace(out) != "" {
			t.Errorf("replica %d printed on stdout (bootstrap must happen once):\n%s", i+1, out)
		}
	}

	const n = 300
	created := make(map[string]time.Time, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, n)
	clients := []*client.Client{newClient(t, a.URL, b.Token), newClient(t, bsrv.URL, b.Token), newClient(t, csrv.URL, b.Token)}
	start := time.Now()
	for g := range 6 {
		wg.Go(func() {
			for i := g; i < n; i += 6 {
				h, _, err := clients[i%3].Create(ctx, client.CreateRequest{Action: "deploy.web", Title: fmt.Sprintf("Ship %d", i)}, client.NewIdempotencyKey())
				if err != nil {
					errc <- fmt.Errorf("create %d on replica %d: %w", i, i%3, err)
					return
				}
				mu.Lock()
				created[h.ID] = h.CreatedAt
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("created %d handoffs over 3 replicas in %s", n, time.Since(start).Round(time.Millisecond))

	pairs := func(ds []delivery) map[string][]delivery {
		m := map[string][]delivery{}
		for _, d := range ds {
			k := fmt.Sprintf("%s/%d.%d", d.handoff, d.climb, d.step)
			m[k] = append(m[k], d)
		}
		return m
	}
	sink.waitFor(45*time.Second, fmt.Sprintf("%d distinct (handoff, rung) posts", 2*n), func(ds []delivery) bool {
		return len(pairs(ds)) >= 2*n
	})
	t.Logf("all %d rungs arrived %s after the first create", 2*n, time.Since(start).Round(time.Millisecond))

	// One more handoff, created through A, long-polled on B, decided on C by the admin.
	h, _, err := clients[0].Create(ctx, client.CreateRequest{Action: "db.migrate", Title: "Migrate"}, "")
	if err != nil {
		t.Fatalf("create on A: %v", err)
	}
	type waited struct {
		h   *client.Handoff
		err error
		at  time.Time
	}
	waitc := make(chan waited, 1)
	go func() {
		wh, err := clients[1].WaitOnce(ctx, h.ID, 30*time.Second)
		waitc <- waited{wh, err, time.Now()}
	}()
	admin := testserver.PersonAt(t, csrv.URL, adminSession(t, dbURL, b))
	select {
	case w := <-waitc:
		t.Fatalf("the long-poll on B returned before any decision: %+v, %v", w.h, w.err)
	case <-time.After(time.Second):
	}
	decided := time.Now()
	dec, err := admin.Decide(ctx, h.ID, "approve", "ok from C")
	if err != nil {
		t.Fatalf("decide on C: %v", err)
	}
	if dec.Status != client.StatusApproved {
		t.Fatalf("decided on C: %q, want approved", dec.Status)
	}
	select {
	case w := <-waitc:
		if w.err != nil {
			t.Fatalf("the long-poll on B: %v", w.err)
		}
		if w.h.Status != client.StatusApproved {
			t.Fatalf("the long-poll on B returned %q, want approved", w.h.Status)
		}
		lat := w.at.Sub(decided)
		t.Logf("decide on C → long-poll on B returned in %s", lat.Round(time.Millisecond))
		if lat >= 3*time.Second {
			t.Errorf("the long-poll on B returned %s after the decision on C, want < 3s", lat)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll on B did not return within 10s of the decision on C")
	}

	// What could still post a rung is a send job whose row is not settled yet (a retry after a provider
	// error re-posts under the same key; a row once sent makes every later run of its job do nothing).
	// So wait for every send row to settle, then for every replica to exit (a graceful stop lets the
	// jobs in flight finish) and for the bridge to answer every post: a duplicate would then be among
	// what it received.
	st := testdb.OpenURL(t, dbURL)
	webhookSends := func(id string) []store.Send {
		t.Helper()
		var sends []store.Send
		if err := st.InOrg(ctx, b.OrgID, func(tx store.OrgTx) error {
			all, err := tx.ListSends(ctx, id)
			for _, s := range all {
				if s.Channel == webhook.Kind.Name {
					sends = append(sends, s)
				}
			}
			return err
		}); err != nil {
			t.Fatalf("sends of %s: %v", id, err)
		}
		return sends
	}
	unsettled := func() (n int, example string) {
		for id := range created {
			ss := webhookSends(id)
			if len(ss) < 2 {
				n, example = n+1, fmt.Sprintf("handoff %s has %d webhook send rows", id, len(ss))
			}
			for _, s := range ss {
				if s.State == store.SendSending {
					n, example = n+1, fmt.Sprintf("handoff %s send %s is still sending (%s)", id, s.Key, s.Detail)
				}
			}
		}
		return n, example
	}
	deadline := time.Now().Add(30 * time.Second)
	for n, example := unsettled(); n > 0; n, example = unsettled() {
		if time.Now().After(deadline) {
			t.Fatalf("%d send row(s) unsettled 30s after every rung arrived, e.g. %s", n, example)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range replicas {
		r.stop()
		mustNotContain(t, "a replica's log", r.Stderr(), b.Token, b.Password, whsec)
	}
	sink.close()
	got := sink.escalated()
	if bad := sink.rejected(); len(bad) > 0 {
		t.Errorf("the bridge rejected %d post(s): %v", len(bad), bad[:min(len(bad), 5)])
	}
	byPair := pairs(got)
	dups := 0
	var dupPairs []string
	for k, ds := range byPair {
		if len(ds) > 1 {
			dups += len(ds) - 1
			dupPairs = append(dupPairs, fmt.Sprintf("%s×%d", k, len(ds)))
		}
		if id, _, _ := strings.Cut(k, "/"); id != h.ID {
			if _, ok := created[id]; !ok {
				t.Errorf("the bridge got a post for %s, a handoff nobody created", k)
			}
		}
	}
	late := make([][]time.Duration, 2)
	for id, at := range created {
		for step := range 2 {
			ds := byPair[fmt.Sprintf("%s/0.%d", id, step)]
			if len(ds) == 0 {
				t.Errorf("handoff %s rung %d never arrived", id, step)
				continue
			}
			if want := fmt.Sprintf("%s/0.%d.webhook.webhook:sink.0", id, step); ds[0].id != want {
				t.Errorf("handoff %s rung %d has webhook-id %q, want %q", id, step, ds[0].id, want)
			}
			late[step] = append(late[step], ds[0].at.Sub(at.Add(time.Duration(step)*time.Second)))
		}
	}
	if dups != 0 {
		t.Errorf("%d duplicate post(s) with nothing killed, want 0: %v", dups, dupPairs[:min(len(dupPairs), 5)])
	}
	t.Logf("%d posts, %d duplicates", len(got), dups)
	for step, l := range late {
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		t.Logf("rung %d arrived after it was due by: p50 %s, p99 %s, max %s", step,
			l[len(l)/2].Round(time.Millisecond), l[len(l)*99/100].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond))
	}

	// The send rows, unique per (handoff, rung), agree: two per handoff, both sent at the first attempt.
	for id := range created {
		var keys []string
		for _, s := range webhookSends(id) {
			keys = append(keys, s.Key)
			if s.State != store.SendSent || s.Detail != "" || s.Target != "webhook:sink" || s.Attempt != 0 {
				t.Errorf("handoff %s: send %s is %s %q (target %s, attempt %d), want sent to webhook:sink at attempt 0",
					id, s.Key, s.State, s.Detail, s.Target, s.Attempt)
			}
		}
		slices.Sort(keys)
		if want := []string{"0.0.webhook.webhook:sink.0", "0.1.webhook.webhook:sink.0"}; !slices.Equal(keys, want) {
			t.Errorf("handoff %s has webhook send rows %v, want %v", id, keys, want)
		}
	}
}

// adminSession writes a session row for the bootstrap admin straight into the database, the way
// login does, and returns the cookie value (a real login costs a 600,000-iteration hash).
func adminSession(t *testing.T, dbURL string, b bootstrap) string {
	t.Helper()
	ctx := context.Background()
	st := testdb.OpenURL(t, dbURL)
	tok, err := auth.NewToken(auth.SessionIDPrefix)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	err = st.InOrg(ctx, b.OrgID, func(tx store.OrgTx) error {
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.Email == b.Email {
				return tx.CreateSession(ctx, store.Session{IDHash: tok.Hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			}
		}
		return fmt.Errorf("no user %s among %d", b.Email, len(users))
	})
	if err != nil {
		t.Fatalf("admin session: %v", err)
	}
	return tok.Plain
}

// heldSink is a bridge that never answers the first post of one rung: the process sending it is
// killed meanwhile, so the send is claimed in the database and its job left running by a dead
// process. Every other post is verified and recorded, escalations and finishes alike.
type heldSink struct {
	secret []byte
	step   int
	URL    string
	held   chan time.Time // when the held post arrived

	mu   sync.Mutex
	once bool
	got  []delivery
	bad  []string
	seen chan struct{}
}

func newHeldSink(t *testing.T, secret []byte, step int) *heldSink {
	s := &heldSink{secret: secret, step: step, held: make(chan time.Time, 1), seen: make(chan struct{}, 1)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var m webhook.Message
		if err := auth.VerifyWebhook(s.secret, r.Header, body, time.Now(), auth.DefaultWebhookTolerance); err != nil || json.Unmarshal(body, &m) != nil {
			s.mu.Lock()
			s.bad = append(s.bad, fmt.Sprintf("%v: %s", err, body))
			s.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		hold := m.Type == "handoff.escalated" && m.Step == s.step && !s.once
		if hold {
			s.once = true
		}
		s.mu.Unlock()
		if hold {
			s.held <- time.Now()
			<-r.Context().Done() // until the sender dies
			return
		}
		s.mu.Lock()
		s.got = append(s.got, delivery{id: r.Header.Get(auth.WebhookIDHeader), typ: m.Type, handoff: m.Handoff.ID, climb: m.Climb, step: m.Step, at: time.Now()})
		s.mu.Unlock()
		select {
		case s.seen <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func (s *heldSink) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.got...)
}

// A server is killed with SIGKILL while it sends a rung of a ladder that ends by expiring the
// handoff, and started again: the first rung, which the create sent after its commit, and the last,
// which its step job sent. The rung's send comes back, when its rescue job runs (the first) or when
// the job runner rescues its job (the last), within about a minute; and the ladder's end, overdue
// meanwhile, waits for it: the rung reaches the bridge (under its one webhook-id) before the handoff
// expires. The lateness is logged.
func TestEscalationSIGKILLMidSend(t *testing.T) {
	t.Parallel()
	for _, step := range []int{0, 1} {
		t.Run(fmt.Sprintf("step %d", step), func(t *testing.T) {
			t.Parallel()
			sigkillMidSend(t, step)
		})
	}
}

func sigkillMidSend(t *testing.T, step int) {
	ctx := testCtx(t, 150*time.Second)
	whsec, key := newWebhookSecret(t)
	sink := newHeldSink(t, key, step)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "default.yaml"), `name: default
default: true
steps:
  - name: first
    channels: [webhook]
    targets: [webhook:sink]
    wait: 3s
  - name: last
    channels: [webhook]
    targets: [webhook:sink]
    wait: 3s
end: expire
`)
	vars := map[string]string{
		"ONY_DATA_DIR":                  t.TempDir(),
		"ONY_ESCALATION_LADDERS_DIR":    dir,
		"ONY_ESCALATION_WEBHOOKS":       "sink=" + sink.URL,
		"ONY_ESCALATION_WEBHOOK_SECRET": whsec,
		"ONY_JOBS_POLL_INTERVAL":        "50ms",
	}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	agent := newClient(t, srv.URL, b.Token)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy.web", Title: "Ship it", Timeout: 10 * time.Minute}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	due := h.CreatedAt.Add(time.Duration(3*step) * time.Second) // the held rung
	end := h.CreatedAt.Add(6 * time.Second)                     // the ladder's end
	var heldAt time.Time
	select {
	case heldAt = <-sink.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("rung %d's post did not arrive within 30s; the bridge got %s", step, summarize(sink.deliveries(), 10))
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-srv.done
	killed := time.Now()
	srv2 := startServe(t, vars)
	srv2.waitReady()
	ready := time.Now()

	var resent time.Time
	for deadline := time.Now().Add(120 * time.Second); resent.IsZero(); {
		for _, d := range sink.deliveries() {
			if d.typ == "handoff.finished" {
				t.Fatalf("the handoff finished (%s after the kill) before rung %d was sent again; the bridge got %s",
					d.at.Sub(killed).Round(time.Millisecond), step, summarize(sink.deliveries(), 10))
			}
			if d.typ == "handoff.escalated" && d.step == step {
				resent = d.at
			}
		}
		if resent.IsZero() && time.Now().After(deadline) {
			t.Fatalf("rung %d was not sent again within 120s of the restart; the bridge got %s", step, summarize(sink.deliveries(), 10))
		}
		select {
		case <-sink.seen:
		case <-time.After(100 * time.Millisecond):
		}
	}
	var final *client.Handoff
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got, err := newClient(t, srv2.URL, b.Token).Get(ctx, h.ID)
		if err == nil && got.Status != client.StatusPending {
			final = got
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handoff did not end within 30s of the held rung: %+v, %v", got, err)
		}
	}
	if final.Status != client.StatusExpired || final.Decision == nil {
		t.Fatalf("the handoff ended %s, want expired", final.Status)
	}
	if expired := final.Decision.DecidedAt; expired.Before(resent.Add(-time.Second)) {
		t.Errorf("the handoff expired at %s, before the held rung reached the bridge at %s", expired, resent)
	}
	srv2.stop()
	mustNotContain(t, "the restarted server's log", srv2.Stderr(), b.Token, whsec)
	ids := map[string]bool{}
	for _, d := range sink.deliveries() {
		if d.typ == "handoff.escalated" && d.step == step {
			ids[d.id] = true
		}
	}
	if want := fmt.Sprintf("%s/0.%d.webhook.webhook:sink.0", h.ID, step); len(ids) != 1 || !ids[want] {
		t.Errorf("the held rung arrived under webhook-ids %v, want only %s", ids, want)
	}
	sink.mu.Lock()
	if len(sink.bad) > 0 {
		t.Errorf("the bridge rejected posts: %v", sink.bad)
	}
	sink.mu.Unlock()
	t.Logf("rung %d due at +%s, its post held at +%s, server killed; restart ready %s after the kill", step,
		due.Sub(h.CreatedAt), heldAt.Sub(h.CreatedAt).Round(time.Millisecond), ready.Sub(killed).Round(time.Millisecond))
	t.Logf("rung %d sent again %s after the kill: %s late against its schedule", step, resent.Sub(killed).Round(time.Millisecond),
		resent.Sub(due).Round(time.Millisecond))
	t.Logf("ladder end due at +%s; the handoff expired at +%s (%s after the held rung arrived)", end.Sub(h.CreatedAt),
		final.Decision.DecidedAt.Sub(h.CreatedAt).Round(time.Millisecond), final.Decision.DecidedAt.Sub(resent).Round(time.Millisecond))
}
