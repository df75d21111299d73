package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testserver"
)

// requestRun is one finished cmdRequest.
type requestRun struct {
	code           int
	stdout, stderr string
}

func (r requestRun) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// request runs `ony request` in-process against baseURL with token; the environment is never read for
// them (tests run in parallel), only the flags.
func request(t *testing.T, baseURL, token, stdin string, args ...string) requestRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	// --client-config points at a file that does not exist, so a developer's own agent.yaml cannot leak in.
	args = append([]string{"--url", baseURL, "--token", token, "--client-config", filepath.Join(t.TempDir(), "none.yaml")}, args...)
	err := cmdRequest(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	r := requestRun{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("cmdRequest returned %T (%v), want *exitError", err, err)
		}
		r.code = ee.code
		if ee.msg == "" {
			t.Errorf("exit %d without a message", ee.code)
		}
		// What main prints for it.
		r.stderr += "ony: " + ee.msg + "\n"
	}
	if token != "" && strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("the output shows the device token:\n%s", r)
	}
	return r
}

// startRequestServer starts a seeded in-process Ony.
func startRequestServer(t *testing.T, dialect string) *testserver.Instance {
	t.Helper()
	return testserver.Start(t, testserver.Options{Dialect: dialect}).Seed(t)
}

// whenPending waits in the background for a pending handoff visible to c and hands its id to act.
func whenPending(c *client.Client, act func(ctx context.Context, id string) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		for {
			hs, err := c.List(ctx, client.StatusPending, 10)
			if err != nil {
				done <- err
				return
			}
			if len(hs) > 0 {
				done <- act(ctx, hs[0].ID)
				return
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
		}
	}()
	return done
}

func decideWhenPending(person *client.Client, option, comment string) <-chan error {
	return whenPending(person, func(ctx context.Context, id string) error {
		_, err := person.Decide(ctx, id, option, comment)
		return err
	})
}

// onlyHandoff lists the organization's handoffs as a person and requires exactly one.
func onlyHandoff(t *testing.T, person *client.Client) client.Handoff {
	t.Helper()
	hs, err := person.List(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 {
		t.Fatalf("%d handoffs exist, want exactly 1: %+v", len(hs), hs)
	}
	return hs[0]
}

func TestRequestApproved(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			in := startRequestServer(t, dialect)
			person := in.Person(t, in.Member)
			const secret = "kubectl apply -f api.yaml --token=do-not-echo-this"
			file := filepath.Join(t.TempDir(), "payload.txt")
			if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
				t.Fatal(err)
			}
			decided := decideWhenPending(person, "approve", "ship it")
			r := request(t, in.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Deploy api v2",
				"--label", "env=prod", "--payload-file", file, "--payload-kind", "command", "--timeout", "5m", "--wait")
			if err := <-decided; err != nil {
				t.Fatalf("decide: %v", err)
			}
			if r.code != exitApproved {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if got, want := strings.TrimSpace(r.stdout), `approved by Mia Member via api: "ship it"`; got != want {
				t.Errorf("stdout = %q, want %q", got, want)
			}
			if !strings.Contains(r.stderr, "waiting for a human decision on "+in.URL+"/console/handoffs/") {
				t.Errorf("stderr does not announce the wait with the console link:\n%s", r)
			}
			if strings.Contains(r.stdout+r.stderr, "do-not-echo-this") {
				t.Errorf("the payload was echoed:\n%s", r)
			}
			h := onlyHandoff(t, person)
			if h.Payload == nil || h.Payload.Kind != "command" || h.Payload.Bytes != len(secret) {
				t.Errorf("payload = %+v, want command of %d bytes", h.Payload, len(secret))
			}
			if h.Labels["env"] != "prod" || h.Risk != "high" {
				t.Errorf("labels %v, risk %q; want env=prod, high", h.Labels, h.Risk)
			}
			if d := h.ExpiresAt.Sub(h.CreatedAt); d != 5*time.Minute {
				t.Errorf("timeout = %s, want 5m", d)
			}
		})
	}
}

func TestRequestDenied(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)
	decided := decideWhenPending(person, "deny", "not on a Friday")
	r := request(t, in.URL, in.DeviceToken, "", "--action", "db.migrate", "--title", "Drop the old table", "--wait")
	if err := <-decided; err != nil {
		t.Fatalf("decide: %v", err)
	}
	if r.code != exitDenied {
		t.Fatalf("want exit 1:\n%s", r)
	}
	if got, want := strings.TrimSpace(r.stdout), `denied by Mia Member via api: "not on a Friday"`; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

// TestRequestCustomOptions checks --option: the chosen option is named, and an option without
// :approves denies.
func TestRequestCustomOptions(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)
	decided := decideWhenPending(person, "canary", "")
	r := request(t, in.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Roll out",
		"--option", "full:Everything at once:approves", "--option", "canary:Canary: 5% first:approves",
		"--option", "no:Not now", "--wait")
	if err := <-decided; err != nil {
		t.Fatalf("decide: %v", err)
	}
	if r.code != exitApproved {
		t.Fatalf("want exit 0:\n%s", r)
	}
	if got, want := strings.TrimSpace(r.stdout), `approved by Mia Member via api (option "canary")`; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	h := onlyHandoff(t, person)
	want := []client.Option{{ID: "full", Label: "Everything at once", Approves: true},
		{ID: "canary", Label: "Canary: 5% first", Approves: true}, {ID: "no", Label: "Not now"}}
	if len(h.Options) != len(want) {
		t.Fatalf("options = %+v, want %+v", h.Options, want)
	}
	for i := range want {
		if h.Options[i] != want[i] {
			t.Errorf("option %d = %+v, want %+v", i, h.Options[i], want[i])
		}
	}
}

// TestRequestExpired is the only test that waits for a real expiry (the minimum timeout is 10 s).
func TestRequestExpired(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	start := time.Now()
	r := request(t, in.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Nobody is around", "--timeout", "10s", "--wait")
	if r.code != exitExpired {
		t.Fatalf("want exit 2:\n%s", r)
	}
	if el := time.Since(start); el < 9*time.Second {
		t.Errorf("returned after %s, before the 10s timeout", el)
	}
	if got, want := strings.TrimSpace(r.stdout), "expired (no human decision within 10s)"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if strings.Contains(r.stdout+r.stderr, "denied") {
		t.Errorf("an expiry is reported as a denial:\n%s", r)
	}
}

func TestRequestCancelled(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	agent := in.Agent(t)
	cancelled := whenPending(agent, func(ctx context.Context, id string) error {
		_, err := agent.Cancel(ctx, id, "superseded by a newer build")
		return err
	})
	r := request(t, in.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Deploy build 41", "--wait")
	if err := <-cancelled; err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if r.code != exitCancelled {
		t.Fatalf("want exit 3:\n%s", r)
	}
	if got, want := strings.TrimSpace(r.stdout), `cancelled by test agent via api: "superseded by a newer build"`; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)

	// Without --wait: the pending handoff, at once.
	r := request(t, in.URL, in.DeviceToken, "", "--action", "git.push", "--title", "Force-push main", "--json")
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	var created client.Handoff
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	if created.ID == "" || created.Status != client.StatusPending || created.ConsoleURL == "" {
		t.Errorf("created = %+v, want a pending handoff", created)
	}

	// With --wait: the final one. Withdraw the first so that the decider finds only the second.
	if _, err := in.Agent(t).Cancel(context.Background(), created.ID, ""); err != nil {
		t.Fatal(err)
	}
	decided := decideWhenPending(person, "deny", "use a branch")
	r = request(t, in.URL, in.DeviceToken, "", "--action", "git.push", "--title", "Force-push main again", "--json", "--wait")
	if err := <-decided; err != nil {
		t.Fatalf("decide: %v", err)
	}
	if r.code != exitDenied {
		t.Fatalf("want exit 1:\n%s", r)
	}
	var final client.Handoff
	if err := json.Unmarshal([]byte(r.stdout), &final); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	if final.Status != client.StatusDenied || final.Decision == nil || final.Decision.Comment != "use a branch" ||
		final.Decision.By == nil || final.Decision.By.ID != in.Member.ID {
		t.Errorf("final = %+v (decision %+v), want denied by the member with the comment", final, final.Decision)
	}
	if final.ID == created.ID {
		t.Error("the second request returned the first handoff")
	}
}

func TestRequestPayloadFromStdin(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)
	for i, args := range [][]string{{"--payload-stdin"}, {"--payload-file", "-"}} {
		content := "rm -rf ./build # echo-check-" + string(rune('a'+i))
		title := "Clean the build dir " + string(rune('a'+i))
		r := request(t, in.URL, in.DeviceToken, content, append([]string{"--action", "shell.exec", "--title", title}, args...)...)
		if r.code != 0 {
			t.Fatalf("%v: want exit 0:\n%s", args, r)
		}
		id := strings.TrimSpace(r.stdout)
		if strings.Contains(r.stdout+r.stderr, "echo-check") {
			t.Errorf("%v: the payload was echoed:\n%s", args, r)
		}
		h, err := person.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("%v: get %q: %v", args, id, err)
		}
		// shell.* actions default to the command kind.
		if h.Payload == nil || h.Payload.Kind != "command" || h.Payload.Bytes != len(content) {
			t.Errorf("%v: payload = %+v, want command of %d bytes", args, h.Payload, len(content))
		}
	}
	// Other actions default to text.
	r := request(t, in.URL, in.DeviceToken, "some notes", "--action", "deploy", "--title", "Deploy", "--payload-stdin")
	h, err := person.Get(context.Background(), strings.TrimSpace(r.stdout))
	if err != nil || h.Payload == nil || h.Payload.Kind != "text" {
		t.Errorf("payload = %+v (%v), want text\n%s", h.Payload, err, r)
	}
}

func TestRequestIdempotencyKey(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)
	args := []string{"--action", "deploy", "--title", "Deploy api v3", "--label", "env=prod", "--idempotency-key", "ci-run-7781"}
	first := request(t, in.URL, in.DeviceToken, "", args...)
	second := request(t, in.URL, in.DeviceToken, "", args...)
	if first.code != 0 || second.code != 0 {
		t.Fatalf("want exit 0 twice:\n%s\n%s", first, second)
	}
	if first.stdout != second.stdout || strings.TrimSpace(first.stdout) == "" {
		t.Errorf("the same key gave different handoffs: %q and %q", first.stdout, second.stdout)
	}
	if !strings.Contains(second.stderr, "already existed") {
		t.Errorf("the replay is not mentioned:\n%s", second)
	}
	onlyHandoff(t, person)

	// Once decided, the same command reports the decision without waiting.
	if _, err := person.Decide(context.Background(), strings.TrimSpace(first.stdout), "approve", ""); err != nil {
		t.Fatal(err)
	}
	third := request(t, in.URL, in.DeviceToken, "", append(args, "--wait")...)
	if third.code != exitApproved || strings.Contains(third.stderr, "waiting") {
		t.Errorf("want exit 0 without waiting:\n%s", third)
	}

	// The same key for a different request is refused, not replayed.
	other := request(t, in.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Something else", "--idempotency-key", "ci-run-7781")
	if other.code != exitRequestError || !strings.Contains(other.stderr, "idempotency_key_reused") {
		t.Errorf("want exit 4 with idempotency_key_reused:\n%s", other)
	}
	onlyHandoff(t, person)
}

// flakyProxy forwards to target but fails the first POST /v1/handoffs with 503: before forwarding it
// (the server never saw it) or, with lose, after (the handoff exists but its answer is lost).
type flakyProxy struct {
	*httptest.Server
	mu    sync.Mutex
	posts []string // Idempotency-Key of each POST
}

func newFlakyProxy(t *testing.T, target string, lose bool) *flakyProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &flakyProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/handoffs" {
			p.mu.Lock()
			p.posts = append(p.posts, r.Header.Get("Idempotency-Key"))
			first := len(p.posts) == 1
			p.mu.Unlock()
			if first {
				if lose {
					rp.ServeHTTP(httptest.NewRecorder(), r)
				}
				http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func TestRequestRetriesThroughFlakyProxy(t *testing.T) {
	t.Parallel()
	for _, lose := range []bool{false, true} {
		name := "refused"
		if lose {
			name = "answer lost"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := startRequestServer(t, "sqlite")
			person := in.Person(t, in.Member)
			proxy := newFlakyProxy(t, in.URL, lose)
			decided := decideWhenPending(person, "approve", "")
			r := request(t, proxy.URL, in.DeviceToken, "", "--action", "deploy", "--title", "Deploy through a flaky LB", "--wait")
			if err := <-decided; err != nil {
				t.Fatalf("decide: %v", err)
			}
			if r.code != exitApproved {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if !strings.Contains(r.stderr, "503") || !strings.Contains(r.stderr, "retrying") {
				t.Errorf("the retry is not reported:\n%s", r)
			}
			proxy.mu.Lock()
			posts := proxy.posts
			proxy.mu.Unlock()
			if len(posts) != 2 || posts[0] == "" || posts[0] != posts[1] {
				t.Errorf("POSTs carried idempotency keys %q, want the same key twice", posts)
			}
			onlyHandoff(t, person)
		})
	}
}

func TestRequestBadToken(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	const bogus = "ony_dev_notARealTokenAtAll1234567890"
	r := request(t, in.URL, bogus, "", "--action", "deploy", "--title", "Deploy", "--wait")
	if r.code != exitRequestError {
		t.Fatalf("want exit 4:\n%s", r)
	}
	if !strings.Contains(r.stderr, "401") || strings.Contains(r.stderr, "retrying") {
		t.Errorf("want one 401 without retries:\n%s", r)
	}
}

func TestRequestServerDown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t) // closed: nothing listens there
	start := time.Now()
	r := request(t, "http://"+addr, "ony_dev_whatever0123456789", "", "--action", "deploy", "--title", "Deploy", "--wait")
	if r.code != exitRequestError {
		t.Fatalf("want exit 4:\n%s", r)
	}
	if n := strings.Count(r.stderr, "retrying"); n != createAttempts-1 {
		t.Errorf("%d retries, want %d:\n%s", n, createAttempts-1, r)
	}
	if !strings.Contains(r.stderr, "cannot reach Ony at http://"+addr) {
		t.Errorf("stderr does not say the server is unreachable:\n%s", r)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("gave up after %s", el)
	}
}

func TestRequestUsageErrors(t *testing.T) {
	t.Parallel()
	in := startRequestServer(t, "sqlite")
	person := in.Person(t, in.Member)
	noConfig := filepath.Join(t.TempDir(), "absent.yaml")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no flags", "", nil, "--action and --title are required"},
		{"no title", "", []string{"--action", "deploy"}, "--action and --title are required"},
		{"unknown flag", "", []string{"--action", "deploy", "--title", "t", "--yes"}, "not defined"},
		{"help", "", []string{"--help"}, "help requested"},
		{"positional", "", []string{"--action", "deploy", "--title", "Deploy", "now"}, `unexpected argument "now"`},
		{"two payloads", "x", []string{"--action", "deploy", "--title", "t", "--payload-stdin", "--payload-file", "f"}, "not both"},
		{"bad kind", "x", []string{"--action", "deploy", "--title", "t", "--payload-stdin", "--payload-kind", "binary"}, "--payload-kind must be"},
		{"kind alone", "", []string{"--action", "deploy", "--title", "t", "--payload-kind", "diff"}, "needs --payload-file"},
		{"missing file", "", []string{"--action", "deploy", "--title", "t", "--payload-file", filepath.Join(t.TempDir(), "nope")}, "payload:"},
		{"binary payload", "\xff\xfe\x00", []string{"--action", "deploy", "--title", "t", "--payload-stdin"}, "not UTF-8"},
		{"bad option", "", []string{"--action", "deploy", "--title", "t", "--option", "yes"}, "ID:LABEL"},
		{"bad label", "", []string{"--action", "deploy", "--title", "t", "--label", "env"}, "KEY=VALUE"},
		{"bad timeout", "", []string{"--action", "deploy", "--title", "t", "--timeout", "soon"}, "invalid value"},
		{"negative timeout", "", []string{"--action", "deploy", "--title", "t", "--timeout", "-1m"}, "negative"},
		// Refused by the server: still 4, never retried.
		{"short timeout", "", []string{"--action", "deploy", "--title", "t", "--timeout", "5s"}, "invalid_timeout"},
		{"bad action", "", []string{"--action", "Deploy Now!", "--title", "t"}, "invalid_action"},
		{"one option", "", []string{"--action", "deploy", "--title", "t", "--option", "ok:OK:approves"}, "400"},
		{"bad url", "", []string{"--action", "deploy", "--title", "t", "--url", "ftp://x"}, "base URL"},
	} {
		args := append([]string{"--url", in.URL, "--token", in.DeviceToken, "--client-config", noConfig}, tc.args...)
		var stdout, stderr bytes.Buffer
		err := cmdRequest(context.Background(), args, strings.NewReader(tc.stdin), &stdout, &stderr)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitRequestError {
			t.Errorf("%s: err = %v, want exit 4", tc.name, err)
			continue
		}
		if !strings.Contains(ee.msg, tc.want) {
			t.Errorf("%s: message %q does not contain %q", tc.name, ee.msg, tc.want)
		}
		if strings.Contains(ee.msg, "retrying") || strings.Contains(stderr.String(), "retrying") {
			t.Errorf("%s: a refused request was retried: %s", tc.name, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("%s: stdout = %q, want nothing", tc.name, stdout.String())
		}
	}
	if hs, err := person.List(context.Background(), "", 100); err != nil || len(hs) != 0 {
		t.Errorf("usage errors created %d handoffs (%v)", len(hs), err)
	}

	// No token anywhere: only checkable when the test process has none in its environment.
	if os.Getenv("ONY_TOKEN") == "" && os.Getenv("ONY_TOKEN_FILE") == "" {
		urlOnly := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(urlOnly, []byte("url: "+in.URL+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := cmdRequest(context.Background(), []string{"--client-config", urlOnly, "--action", "deploy", "--title", "t"},
			strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitRequestError || !strings.Contains(ee.msg, "no device token") {
			t.Errorf("without a token: err = %v, want exit 4 naming the missing token", err)
		}
	}
}
