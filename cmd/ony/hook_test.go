package main

// Tests of `ony hook` against a real in-process server (internal/testserver). Most call cmdHook
// directly; TestHookBinary runs the built binary. Every test asserts the one promise the hook makes: exit status 0 and one JSON
// decision, allow or deny, on stdout.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testserver"
)

type hookResult struct {
	decision, reason string
	stdout, stderr   string
	code             int
}

// runHook runs cmdHook as `run` would and checks the exit status and the output's shape.
func runHook(t *testing.T, ctx context.Context, stdin string, args ...string) hookResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := cmdHook(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	if code := exitCode(err); code != 0 {
		t.Fatalf("ony hook %s exited %d (%v); it must always exit 0\nstderr:\n%s", strings.Join(args, " "), code, err, stderr.String())
	}
	r := hookResult{stdout: stdout.String(), stderr: stderr.String()}
	r.decision, r.reason = parseHookOutput(t, r.stdout, len(args) > 0 && args[0] == "codex")
	return r
}

// exitCode is the status `run` turns a subcommand's error into.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func parseHookOutput(t *testing.T, stdout string, codex bool) (decision, reason string) {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout is not exactly one line: %q", stdout)
	}
	if codex && stdout == "{}\n" {
		return "allow", ""
	}
	var o struct {
		HookSpecificOutput struct {
			HookEventName            string `json:"hookEventName"`
			PermissionDecision       string `json:"permissionDecision"`
			PermissionDecisionReason string `json:"permissionDecisionReason"`
		} `json:"hookSpecificOutput"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("stdout is not the hook's JSON: %v: %q", err, stdout)
	}
	h := o.HookSpecificOutput
	if h.HookEventName != "PreToolUse" {
		t.Fatalf("hookEventName %q: %q", h.HookEventName, stdout)
	}
	switch h.PermissionDecision {
	case "allow":
		if codex {
			t.Fatalf("codex got permissionDecision allow (Codex treats it as a failed hook): %q", stdout)
		}
	case "deny":
		if strings.TrimSpace(h.PermissionDecisionReason) == "" {
			t.Fatalf("deny without a reason: %q", stdout)
		}
	default:
		t.Fatalf("permissionDecision %q, want allow or deny: %q", h.PermissionDecision, stdout)
	}
	return h.PermissionDecision, h.PermissionDecisionReason
}

func hookInput(tool, toolUseID string, toolInput map[string]any) string {
	b, err := json.Marshal(map[string]any{
		"session_id": "9b1f0c1e-6c57-4a53-a7d6-1d0c3d9e2a11", "transcript_path": "/tmp/t.jsonl",
		"cwd": "/home/dev/src/shop", "hook_event_name": "PreToolUse", "permission_mode": "default",
		"tool_name": tool, "tool_input": toolInput, "tool_use_id": toolUseID,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func bashHookInput(cmd, toolUseID string) string {
	return hookInput("Bash", toolUseID, map[string]any{"command": cmd, "description": "Drop the carts table"})
}

// deadURL is a server URL nothing listens on.
func deadURL(t *testing.T) string { return "http://" + freeAddr(t) }

// waitPending returns the one pending handoff, once the hook has created it.
func waitPending(t *testing.T, ctx context.Context, agent *client.Client) client.Handoff {
	t.Helper()
	for {
		hs, err := agent.List(ctx, client.StatusPending, 10)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(hs) == 1 {
			return hs[0]
		}
		if len(hs) > 1 {
			t.Fatalf("%d pending handoffs, want 1", len(hs))
		}
		select {
		case <-ctx.Done():
			t.Fatal("the hook created no handoff")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startHook runs the hook in the background; the result arrives on the channel.
func startHook(t *testing.T, ctx context.Context, stdin string, args ...string) <-chan hookResult {
	done := make(chan hookResult, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		err := cmdHook(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
		done <- hookResult{code: exitCode(err), stdout: stdout.String(), stderr: stderr.String()}
	}()
	return done
}

func finishHook(t *testing.T, done <-chan hookResult, codex bool) hookResult {
	t.Helper()
	r := <-done
	if r.code != 0 {
		t.Fatalf("ony hook exited %d; it must always exit 0\nstderr:\n%s", r.code, r.stderr)
	}
	r.decision, r.reason = parseHookOutput(t, r.stdout, codex)
	return r
}

func TestHookApprove(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	stdin := bashHookInput(`psql "$PROD_URL" -c 'DROP TABLE carts'`, "toolu_approve")
	args := []string{"claude-code", "--url", in.URL, "--token", in.DeviceToken}
	done := startHook(t, ctx, stdin, args...)

	agent := in.Agent(t)
	h := waitPending(t, ctx, agent)
	if h.Action != "shell.exec" || h.Title != "Drop the carts table" || h.Labels["agent"] != "claude-code" ||
		h.Labels["cwd"] != "shop" || h.Payload == nil || h.Payload.Kind != "command" {
		t.Errorf("handoff %+v", h)
	}
	if got := h.ExpiresAt.Sub(h.CreatedAt); got != 10*time.Minute {
		t.Errorf("handoff timeout %s, want the default 10m", got)
	}
	if _, err := in.Person(t, in.Member).Decide(ctx, h.ID, "approve", "backup is done"); err != nil {
		t.Fatal(err)
	}
	r := finishHook(t, done, false)
	if r.decision != "allow" || r.reason != "Approved by Mia Member via api: backup is done" {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
	mustNotContain(t, "stdout and stderr", r.stdout+r.stderr, in.DeviceToken, "DROP TABLE")

	// The agent retrying the same tool call (same tool_use_id) finds the same, decided handoff.
	again := runHook(t, ctx, stdin, args...)
	if again.decision != "allow" {
		t.Errorf("retry: got %s %q", again.decision, again.reason)
	}
	if all, err := agent.List(ctx, "", 10); err != nil || len(all) != 1 {
		t.Errorf("%d handoffs after a retry (%v), want 1", len(all), err)
	}
}

func TestHookDeny(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	done := startHook(t, ctx, bashHookInput("terraform destroy", "toolu_deny"),
		"claude-code", "--url", in.URL, "--token", in.DeviceToken)
	h := waitPending(t, ctx, in.Agent(t))
	if _, err := in.Person(t, in.Member).Decide(ctx, h.ID, "deny", "not during the sale"); err != nil {
		t.Fatal(err)
	}
	r := finishHook(t, done, false)
	if r.decision != "deny" || r.reason != "Denied by Mia Member: not during the sale" {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
}

func TestHookExpiry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	r := runHook(t, ctx, bashHookInput("make deploy", "toolu_expire"),
		"claude-code", "--url", in.URL, "--token", in.DeviceToken, "--timeout", "10s", "--deadline", "40s")
	if r.decision != "deny" || r.reason != "no human decision within 10s; not approved" {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
	if strings.Contains(r.reason, "Denied") {
		t.Error("an expiry reads as a human's denial")
	}
}

func TestHookDeadlineWithdraws(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 120*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	// The deadline leaves the create room to answer on a loaded machine (under -race in CI one took
	// over 5s), so the test sees the withdrawal of a pending request, not the deny of an unanswered one.
	start := time.Now()
	r := runHook(t, ctx, bashHookInput("make deploy", "toolu_deadline"),
		"claude-code", "--url", in.URL, "--token", in.DeviceToken, "--deadline", "15s")
	if d := time.Since(start); d > 35*time.Second {
		t.Errorf("the hook took %s with a 15s deadline", d)
	}
	if r.decision != "deny" || !strings.Contains(r.reason, "no human decision within the hook's 15s deadline") {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
	hs, err := in.Agent(t).List(ctx, "", 10)
	if err != nil || len(hs) != 1 {
		t.Fatalf("%d handoffs (%v), want 1", len(hs), err)
	}
	if hs[0].Status != client.StatusCancelled {
		t.Errorf("the handoff is %s after the deadline, want cancelled", hs[0].Status)
	}
}

func TestHookServerDown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	r := runHook(t, ctx, bashHookInput("make deploy", "toolu_down"),
		"claude-code", "--url", deadURL(t), "--token", "ony_dev_whatever")
	if r.decision != "deny" || !strings.HasPrefix(r.reason, "Ony approval unavailable: cannot reach the Ony server") ||
		!strings.HasSuffix(r.reason, "; not approved") {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
}

func TestHookBadToken(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	const token = "ony_dev_not-a-real-token-0123456789"
	r := runHook(t, ctx, bashHookInput("make deploy", "toolu_token"), "claude-code", "--url", in.URL, "--token", token)
	if r.decision != "deny" || !strings.Contains(r.reason, "did not accept the device token (401") {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
	mustNotContain(t, "stdout and stderr", r.stdout+r.stderr, token)
}

func TestHookNoToken(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	// A config file with a URL and no token.
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte("url: "+deadURL(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ONY_TOKEN") != "" || os.Getenv("ONY_TOKEN_FILE") != "" {
		t.Skip("ONY_TOKEN is set in this environment")
	}
	r := runHook(t, ctx, bashHookInput("make deploy", "toolu_notoken"), "claude-code", "--client-config", cfg)
	if r.decision != "deny" || !strings.Contains(r.reason, "no device token") {
		t.Errorf("got %s %q", r.decision, r.reason)
	}
}

func TestHookMalformedStdin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	url := deadURL(t)
	for name, stdin := range map[string]string{
		"empty":          "",
		"not json":       "rm -rf /",
		"array":          `[{"tool_name":"Bash"}]`,
		"truncated":      `{"tool_name":"Bash","tool_input":{"command":"ls"`,
		"no tool":        `{"tool_input":{"command":"ls"}}`,
		"wrong type":     `{"tool_name":7,"tool_input":{}}`,
		"input a string": `{"tool_name":"Bash","tool_input":"ls"}`,
		"binary":         "\x00\xff\xfe{",
	} {
		r := runHook(t, ctx, stdin, "claude-code", "--url", url, "--token", "x")
		if r.decision != "deny" || !strings.HasPrefix(r.reason, "Ony approval unavailable: ") {
			t.Errorf("%s: got %s %q", name, r.decision, r.reason)
		}
	}
	big := `{"tool_name":"Write","tool_input":{"file_path":"/x","content":"` + strings.Repeat("a", 4<<20) + `"}}`
	if r := runHook(t, ctx, big, "claude-code", "--url", url, "--token", "x"); r.decision != "deny" ||
		!strings.Contains(r.reason, "over 4 MiB") {
		t.Errorf("4 MiB input: got %s %q", r.decision, r.reason)
	}
}

// TestHookOtherEvent: configured under another event, the hook answers in a shape valid for that
// event, naming it: a warning and no decision. Claude Code refuses a hookSpecificOutput whose
// hookEventName is not the event it ran ("Hook returned incorrect event name"), so a PreToolUse deny
// there was an error, not a deny.
func TestHookOtherEvent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	url := deadURL(t) // the hook must not need the server
	for _, event := range []string{"PostToolUse", "PermissionRequest", "UserPromptSubmit", "Stop"} {
		for _, agent := range []string{"claude-code", "codex"} {
			stdin := `{"hook_event_name":"` + event + `","tool_name":"Bash","tool_input":{"command":"make deploy"}}`
			var stdout, stderr bytes.Buffer
			err := cmdHook(ctx, []string{agent, "--url", url, "--token", "x"}, strings.NewReader(stdin), &stdout, &stderr)
			if code := exitCode(err); code != 0 {
				t.Fatalf("%s %s: exit %d", agent, event, code)
			}
			want := `{"systemMessage":"ony hook answers PreToolUse only, not ` + event +
				`; move it under PreToolUse in the agent's hook settings"}` + "\n"
			if stdout.String() != want {
				t.Errorf("%s %s: stdout %q, want %q", agent, event, stdout.String(), want)
			}
			if strings.Contains(stdout.String(), "PreToolUse\"") || strings.Contains(stdout.String(), "hookEventName") {
				t.Errorf("%s %s: answered as PreToolUse: %q", agent, event, stdout.String())
			}
		}
	}
}

func writePolicy(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHookAllowListNeverReachesServer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	url := deadURL(t) // any request would fail, and the test with it
	policy := writePolicy(t, "default_allow: true\nallow:\n  bash_prefixes: [ls, git status, cat]\n")
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{hookInput("Read", "t1", map[string]any{"file_path": "/etc/hosts"}), nil},
		{hookInput("Grep", "t2", map[string]any{"pattern": "TODO"}), nil},
		{hookInput("Glob", "t3", map[string]any{"pattern": "**/*.go"}), nil},
		{hookInput("Read", "t4", map[string]any{"file_path": "/etc/hosts"}), []string{"--policy", policy}},
		{hookInput("Bash", "t5", map[string]any{"command": "ls -la"}), []string{"--policy", policy}},
		{hookInput("Bash", "t6", map[string]any{"command": "git status"}), []string{"--policy", policy}},
	} {
		args := append([]string{"claude-code", "--url", url, "--token", "x"}, c.args...)
		start := time.Now()
		r := runHook(t, ctx, c.stdin, args...)
		if r.decision != "allow" || !strings.HasPrefix(r.reason, "allowed by ") {
			t.Errorf("%s: got %s %q", c.stdin, r.decision, r.reason)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("an allow-listed call took %s", d)
		}
	}
	// --no-default-allow: Read asks (and here fails closed).
	r := runHook(t, ctx, hookInput("Read", "t7", map[string]any{"file_path": "/etc/hosts"}),
		"claude-code", "--url", url, "--token", "x", "--no-default-allow")
	if r.decision != "deny" {
		t.Errorf("--no-default-allow: got %s %q", r.decision, r.reason)
	}
}

func TestHookChainedCommandIsNotAllowListed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second) // six dead-server runs and a password login under -race on a loaded machine
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	policy := writePolicy(t, "allow:\n  bash_prefixes: [ls]\n")
	for i, cmd := range []string{"ls; rm -rf /", "ls && rm -rf /", "ls | sh", "ls > /etc/passwd", "ls $(rm -rf /)", "ls\nrm -rf /"} {
		// A dead server: had the policy allowed it, the answer would be allow.
		r := runHook(t, ctx, bashHookInput(cmd, "toolu_chain"), "claude-code", "--url", deadURL(t), "--token", "x", "--policy", policy)
		if r.decision != "deny" || !strings.Contains(r.reason, "cannot reach the Ony server") {
			t.Errorf("%q: got %s %q", cmd, r.decision, r.reason)
		}
		mustNotContain(t, "stderr", r.stderr, "rm -rf")
		if i > 0 {
			continue
		}
		// A live server: a human is asked about the whole command.
		done := startHook(t, ctx, bashHookInput(cmd, "toolu_chain_live"), "claude-code", "--url", in.URL,
			"--token", in.DeviceToken, "--policy", policy)
		h := waitPending(t, ctx, in.Agent(t))
		if h.Action != "shell.exec" || h.Payload == nil || h.Payload.Bytes != len(cmd) {
			t.Errorf("handoff %+v", h)
		}
		if _, err := in.Person(t, in.Member).Decide(ctx, h.ID, "deny", ""); err != nil {
			t.Fatal(err)
		}
		if r := finishHook(t, done, false); r.decision != "deny" || r.reason != "Denied by Mia Member via api (no reason given)" {
			t.Errorf("got %s %q", r.decision, r.reason)
		}
	}
}

func TestHookCodex(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	stdin := `{"session_id":"0199a213","turn_id":"1","transcript_path":null,"cwd":"/w/shop","hook_event_name":"PreToolUse",` +
		`"model":"gpt-5","permission_mode":"default","tool_name":"Bash","tool_input":{"command":"terraform apply"},"tool_use_id":"call_1"}`
	done := startHook(t, ctx, stdin, "codex", "--url", in.URL, "--token", in.DeviceToken)
	h := waitPending(t, ctx, in.Agent(t))
	if h.Labels["agent"] != "codex" {
		t.Errorf("labels %v", h.Labels)
	}
	if _, err := in.Person(t, in.Member).Decide(ctx, h.ID, "approve", ""); err != nil {
		t.Fatal(err)
	}
	if r := finishHook(t, done, true); r.stdout != "{}\n" {
		t.Errorf("codex approval printed %q, want {}", r.stdout)
	}
	r := runHook(t, ctx, strings.Replace(stdin, "call_1", "call_2", 1), "codex", "--url", deadURL(t), "--token", "x")
	if r.decision != "deny" {
		t.Errorf("codex, server down: got %s %q", r.decision, r.reason)
	}
}

func TestHookBadInvocation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	stdin := bashHookInput("make deploy", "toolu_bad")
	badPolicy := writePolicy(t, "allow:\n  tool: [Read]\n")
	for name, args := range map[string][]string{
		"no agent":       nil,
		"unknown agent":  {"cursor"},
		"help":           {"claude-code", "-h"},
		"bad flag":       {"claude-code", "--nope"},
		"extra argument": {"claude-code", "extra"},
		"short timeout":  {"claude-code", "--timeout", "5s"},
		"zero deadline":  {"claude-code", "--deadline", "0s"},
		"bad duration":   {"claude-code", "--deadline", "soon"},
		"tiny payload":   {"claude-code", "--max-payload-bytes", "10"},
		"bad policy":     {"claude-code", "--policy", badPolicy},
		"missing policy": {"claude-code", "--policy", filepath.Join(t.TempDir(), "nope.yaml")},
	} {
		r := runHook(t, ctx, stdin, args...)
		if r.decision != "deny" || !strings.HasPrefix(r.reason, "Ony approval unavailable: ") {
			t.Errorf("%s: got %s %q", name, r.decision, r.reason)
		}
	}
}

// TestHookBinary runs the built ony binary: exit status 0 and a deny on failure, and on SIGTERM while
// a request is pending (the agent giving up on the hook) a deny and a withdrawn request.
func TestHookBinary(t *testing.T) {
	// Not parallel: after SIGTERM the hook has a fixed 3 s to withdraw its request (the agent's hook
	// budget, not a test knob), which a -race server shared with this package's other tests can
	// miss; run alone, a withdrawal that fails is a real failure.
	ctx := testCtx(t, 60*time.Second)
	r := runOny(t, map[string]string{"ONY_URL": deadURL(t), "ONY_TOKEN": "x"}, "not json", "hook", "claude-code")
	if r.code != 0 {
		t.Fatalf("malformed input: %s", r)
	}
	if d, _ := parseHookOutput(t, r.stdout, false); d != "deny" {
		t.Fatalf("malformed input: %s", r)
	}

	in := testserver.Start(t, testserver.Options{}).Seed(t)
	cmd := exec.Command(onyBin, "hook", "claude-code")
	cmd.Env = env(map[string]string{"ONY_URL": in.URL, "ONY_TOKEN": in.DeviceToken})
	cmd.Stdin = strings.NewReader(bashHookInput("make deploy", "toolu_sigterm"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := waitPending(t, ctx, in.Agent(t))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ony hook after SIGTERM: %v\n%s", err, stderr.String())
	}
	checkNoRace(t, stderr.String())
	d, reason := parseHookOutput(t, stdout.String(), false)
	if d != "deny" || !strings.Contains(reason, "interrupted") {
		t.Errorf("after SIGTERM: %s %q", d, reason)
	}
	got, err := in.Agent(t).Get(ctx, h.ID)
	if err != nil || got.Status != client.StatusCancelled {
		t.Errorf("after SIGTERM the handoff is %v (%v), want cancelled\nhook stderr:\n%s", got.Status, err, stderr.String())
	}
}
