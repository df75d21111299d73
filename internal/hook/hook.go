// Package hook is `ony hook`: a coding agent's PreToolUse command hook (Claude Code, Codex) that asks
// a human through Ony before a tool call runs, and FAILS CLOSED.
//
// The agent runs the hook with the tool call as JSON on stdin and reads a decision from stdout. When a
// hook exits non-zero (other than 2), crashes or is killed at its timeout, the agent runs the tool
// anyway; so Run never returns anything but an explicit allow or deny. It enforces its own deadline,
// set below the agent's hook timeout, and turns every error, timeout and panic into a deny whose
// reason the model can read. Reasons and diagnostics never carry the tool call's contents or the
// device token.
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ony-ai/ony/client"
)

// Agents this hook speaks for. They send the same stdin fields; they differ in how an allow is written.
const (
	AgentClaudeCode = "claude-code"
	AgentCodex      = "codex"
)

// Defaults and limits.
const (
	// DefaultDeadline bounds one run of the hook, end to end. The agent's own hook timeout must be
	// longer (by a few seconds, for withdrawing the request), or the agent kills the hook and runs
	// the tool.
	DefaultDeadline = 55 * time.Second
	// DefaultTimeout is how long a human has to decide, as sent to the server.
	DefaultTimeout = 10 * time.Minute
	// MinTimeout is the server's minimum handoff timeout.
	MinTimeout = 10 * time.Second
	// DefaultMaxPayload is the server's default handoffs.max_payload_bytes.
	DefaultMaxPayload = 1 << 20
	// MaxInput bounds the hook's stdin.
	MaxInput = 4 << 20
	// withdrawTimeout bounds withdrawing a pending request once the deadline has passed.
	withdrawTimeout = 3 * time.Second
	// maxPoll is one long-poll's length; the server caps it at 60 s.
	maxPoll = 55 * time.Second
)

// Server is the part of Ony's agent API the hook uses; *client.Client implements it.
type Server interface {
	Create(ctx context.Context, r client.CreateRequest, idempotencyKey string) (*client.Handoff, bool, error)
	Get(ctx context.Context, id string) (*client.Handoff, error)
	WaitOnce(ctx context.Context, id string, timeout time.Duration) (*client.Handoff, error)
	Cancel(ctx context.Context, id, reason string) (*client.Handoff, error)
}

// Config is one run's settings.
type Config struct {
	// Agent is AgentClaudeCode (the default) or AgentCodex.
	Agent string
	// Policy allows calls without asking anyone; nil allows nothing.
	Policy *Policy
	// Deadline bounds the whole run (default DefaultDeadline).
	Deadline time.Duration
	// Timeout is the handoff's timeout (default DefaultTimeout, at least MinTimeout).
	Timeout time.Duration
	// MaxPayload bounds the payload sent (default DefaultMaxPayload); longer ones are truncated.
	MaxPayload int
	// Connect returns the server. It is called only when a human must decide, so a call the policy
	// allows needs neither a server URL nor a token.
	Connect func() (Server, error)
	// Log receives one-line diagnostics (stderr); nil discards them.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.Agent == "" {
		c.Agent = AgentClaudeCode
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Result is the hook's verdict.
type Result struct {
	Allow  bool
	Reason string
	// Event is set when the input was for another hook event than PreToolUse. The hook then decides
	// nothing: a PreToolUse answer there is rejected by the agent as the wrong event, and no answer
	// it could give is safer than the agent's own default (after a tool ran, there is nothing left to
	// stop; a permission dialog still goes to the person at the keyboard). It only warns.
	Event string
}

// Allowed and Denied build results.
func Allowed(reason string) Result { return Result{Allow: true, Reason: reason} }
func Denied(reason string) Result  { return Result{Allow: false, Reason: reason} }

// Unavailable is the deny for anything that kept Ony from answering.
func Unavailable(why string) Result {
	return Denied("Ony approval unavailable: " + why + "; not approved")
}

// OtherEvent is the answer to input for a hook event other than PreToolUse.
func OtherEvent(err *OtherEventError) Result {
	return Result{Event: err.Event, Reason: err.Error()}
}

// Decision is "allow" or "deny", or "none" for another event than PreToolUse.
func (r Result) Decision() string {
	if r.Event != "" {
		return "none"
	}
	if r.Allow {
		return "allow"
	}
	return "deny"
}

type output struct {
	HookSpecificOutput *specificOutput `json:"hookSpecificOutput,omitempty"`
}

type specificOutput struct {
	HookEventName            string `json:"hookEventName"`
	PermissionDecision       string `json:"permissionDecision"`
	PermissionDecisionReason string `json:"permissionDecisionReason"`
}

// JSON is the result as the agent reads it on stdout, newline-terminated.
//
// Claude Code gets {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":…,
// "permissionDecisionReason":…}} for both verdicts. Codex treats permissionDecision "allow" (without
// a rewritten input) as an unsupported answer and a failed hook, so an allow for Codex is `{}`: no
// objection, and Codex's own approval settings apply; a deny is the same object as Claude Code's.
//
// For another event than PreToolUse the answer is only {"systemMessage":…}, a warning the agent shows
// the user whatever the event: no hookSpecificOutput, whose hookEventName would have to name that
// event, and no decision.
func (r Result) JSON(agent string) []byte {
	if r.Event != "" {
		b, _ := json.Marshal(struct {
			SystemMessage string `json:"systemMessage"`
		}{r.Reason})
		return append(b, '\n')
	}
	var o output
	if !(r.Allow && agent == AgentCodex) {
		reason := strings.TrimSpace(r.Reason)
		if reason == "" {
			reason = r.Decision() // a deny without a reason is an invalid answer to Codex
		}
		o.HookSpecificOutput = &specificOutput{HookEventName: "PreToolUse", PermissionDecision: r.Decision(),
			PermissionDecisionReason: reason}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil { // cannot happen: strings only
		return []byte(`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"Ony approval unavailable: internal error; not approved"}}` + "\n")
	}
	return b.Bytes()
}

// errDeadline is the cause of the run's context ending at its own deadline.
var errDeadline = errors.New("hook deadline")

// Run decides one tool call read from stdin. It never panics and always returns an explicit verdict;
// anything but a human's approval (or the policy's) is a deny. Input for another hook event than
// PreToolUse is the one exception: there is no tool call to decide, and the result only warns.
func Run(ctx context.Context, cfg Config, stdin io.Reader) (res Result) {
	cfg = cfg.withDefaults()
	defer func() {
		if r := recover(); r != nil {
			// The stack names functions, not the tool call's contents; the panic value might not.
			fmt.Fprintf(cfg.Log, "ony hook: internal error (panic); denying\n%s", debug.Stack())
			res = Unavailable("internal error")
		}
	}()
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Deadline, errDeadline)
	defer cancel()
	res = run(ctx, cfg, stdin)
	switch {
	case res.Event != "":
		fmt.Fprintf(cfg.Log, "ony hook: no decision: %s\n", res.Reason)
	case !res.Allow:
		fmt.Fprintf(cfg.Log, "ony hook: deny: %s\n", res.Reason)
	}
	return res
}

func run(ctx context.Context, cfg Config, stdin io.Reader) Result {
	data, err := readInput(ctx, stdin)
	if err != nil {
		if ctx.Err() != nil {
			return Unavailable("no hook input within " + formatDuration(cfg.Deadline))
		}
		return Unavailable(err.Error())
	}
	in, err := ParseInput(data)
	var other *OtherEventError
	if errors.As(err, &other) {
		return OtherEvent(other)
	}
	if err != nil {
		return Unavailable(err.Error())
	}
	if ok, why := cfg.Policy.Allows(in); ok {
		return Allowed(why)
	}
	req, key, err := Map(in, cfg.Agent, cfg.Timeout, cfg.MaxPayload)
	if err != nil {
		return Unavailable(err.Error())
	}
	if cfg.Connect == nil {
		return Unavailable("no Ony server configured")
	}
	srv, err := cfg.Connect()
	if err != nil {
		return Unavailable(oneLine(err.Error(), 300))
	}
	return ask(ctx, cfg, srv, req, key)
}

// readInput reads stdin within the deadline: an agent that never closes it must not hold the hook
// past its deadline.
func readInput(ctx context.Context, r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, errors.New("no hook input")
	}
	type read struct {
		data []byte
		err  error
	}
	done := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
		done <- read{b, err}
	}()
	select {
	case rd := <-done:
		if rd.err != nil {
			return nil, errors.New("cannot read the hook input")
		}
		if len(rd.data) > MaxInput {
			return nil, fmt.Errorf("hook input is over %d MiB", MaxInput>>20)
		}
		return rd.data, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ask posts the handoff and waits for its end, within ctx's deadline.
func ask(ctx context.Context, cfg Config, srv Server, req client.CreateRequest, key string) Result {
	h, sent, err := create(ctx, srv, req, key)
	if err != nil {
		if ctx.Err() != nil {
			if sent {
				// The request may have reached the server: replaying it by its key finds it to withdraw.
				withdrawByKey(ctx, cfg, srv, req, key, "the agent's hook stopped waiting ("+stopCause(ctx, cfg)+")")
			}
			return ended(ctx, cfg, "before Ony answered")
		}
		return Unavailable(shortError(err))
	}
	if h.Final() { // an idempotent replay of a request that already ended
		return verdict(h, cfg.Timeout)
	}
	if h.ConsoleURL != "" {
		fmt.Fprintf(cfg.Log, "ony hook: waiting for a human decision: %s\n", oneLine(h.ConsoleURL, 500))
	}
	backoff := 200 * time.Millisecond
	for {
		poll := maxPoll
		if dl, ok := ctx.Deadline(); ok {
			poll = min(poll, time.Until(dl))
		}
		w, err := srv.WaitOnce(ctx, h.ID, max(poll, time.Second))
		if err == nil {
			backoff = 200 * time.Millisecond
			if w.Final() {
				return verdict(w, cfg.Timeout)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if !client.Retryable(err) {
			withdraw(ctx, cfg, srv, h.ID, "the agent's hook could not wait for the decision")
			return Unavailable(shortError(err))
		}
		fmt.Fprintf(cfg.Log, "ony hook: waiting for %s: %s; retrying\n", h.ID, shortError(err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	// The deadline passed (or the hook was interrupted) while the request was pending: withdraw it, so
	// nobody approves a call that did not run, and deny. A decision that landed meanwhile still counts.
	if h2 := withdraw(ctx, cfg, srv, h.ID, "the agent's hook stopped waiting ("+stopCause(ctx, cfg)+")"); h2 != nil && h2.Final() &&
		h2.Status != client.StatusCancelled {
		return verdict(h2, cfg.Timeout)
	}
	return ended(ctx, cfg, "")
}

// ended is the deny for a run whose context ended while no human had decided.
func ended(ctx context.Context, cfg Config, when string) Result {
	if context.Cause(ctx) == errDeadline {
		if when != "" {
			return Unavailable("no answer within the hook's " + formatDuration(cfg.Deadline) + " deadline " + when)
		}
		return Denied("no human decision within the hook's " + formatDuration(cfg.Deadline) +
			" deadline; the request was withdrawn; not approved")
	}
	return Unavailable("the hook was interrupted before a human decided")
}

func stopCause(ctx context.Context, cfg Config) string {
	if context.Cause(ctx) == errDeadline {
		return "its " + formatDuration(cfg.Deadline) + " deadline passed"
	}
	return "interrupted"
}

// create posts the handoff, retrying a transient failure twice: the idempotency key makes a retry
// return the same handoff. A server that is down is reported within seconds, not at the deadline.
// sent reports whether a request may have reached the server.
func create(ctx context.Context, srv Server, req client.CreateRequest, key string) (h *client.Handoff, sent bool, err error) {
	delays := []time.Duration{300 * time.Millisecond, time.Second}
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil, sent, ctx.Err()
		}
		sent = true
		h, _, err := srv.Create(ctx, req, key)
		if err == nil {
			if h == nil || h.ID == "" {
				return nil, sent, errors.New("unexpected response from the Ony server")
			}
			return h, sent, nil
		}
		if ctx.Err() != nil || !client.Retryable(err) || attempt >= len(delays) {
			return nil, sent, err
		}
		select {
		case <-time.After(delays[attempt]):
		case <-ctx.Done():
			return nil, sent, ctx.Err()
		}
	}
}

// withdrawByKey cancels a handoff whose creation ctx cut short, found by replaying its creation.
func withdrawByKey(ctx context.Context, cfg Config, srv Server, req client.CreateRequest, key, reason string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	h, _, err := srv.Create(wctx, req, key)
	if err != nil || h == nil || h.ID == "" || h.Final() {
		return
	}
	if _, err := srv.Cancel(wctx, h.ID, reason); err != nil {
		fmt.Fprintf(cfg.Log, "ony hook: could not withdraw %s: %s\n", h.ID, shortError(err))
	}
}

// withdraw cancels a pending handoff, best effort, within withdrawTimeout of a context that outlives
// ctx. It returns the handoff's final state when it learns it.
func withdraw(ctx context.Context, cfg Config, srv Server, id, reason string) *client.Handoff {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	h, err := srv.Cancel(wctx, id, reason)
	if err == nil {
		return h
	}
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == 409 {
		// Already final: someone decided (or it expired) just now.
		if h, err := srv.Get(wctx, id); err == nil {
			return h
		}
	}
	fmt.Fprintf(cfg.Log, "ony hook: could not withdraw %s: %s\n", id, shortError(err))
	return nil
}

// verdict turns a final handoff into the hook's answer. Expiry is never reported as a human's no.
func verdict(h *client.Handoff, timeout time.Duration) Result {
	d := h.Decision
	by, channel, comment := "", "", ""
	if d != nil {
		if d.By != nil {
			by = oneLine(d.By.Name, 100)
			if by == "" {
				by = oneLine(d.By.ID, 100)
			}
		}
		channel = oneLine(d.Channel, 50)
		comment = oneLine(d.Comment, 2000)
	}
	switch h.Status {
	case client.StatusApproved:
		r := "Approved"
		if by != "" {
			r += " by " + by
		}
		if channel != "" {
			r += " via " + channel
		}
		if comment != "" {
			r += ": " + comment
		}
		return Allowed(r)
	case client.StatusDenied:
		who := by
		if who == "" {
			who = "a human"
		}
		if comment != "" {
			return Denied("Denied by " + who + ": " + comment)
		}
		r := "Denied by " + who
		if channel != "" {
			r += " via " + channel
		}
		return Denied(r + " (no reason given)")
	case client.StatusExpired:
		if !h.CreatedAt.IsZero() && h.ExpiresAt.After(h.CreatedAt) {
			timeout = h.ExpiresAt.Sub(h.CreatedAt)
		}
		return Denied("no human decision within " + formatDuration(timeout) + "; not approved")
	case client.StatusCancelled:
		r := "The request was cancelled"
		if d != nil && d.By != nil && d.By.Kind == "user" && by != "" {
			r += " by " + by
		}
		if comment != "" && d != nil && d.By != nil && d.By.Kind == "user" {
			r += ": " + comment
		}
		return Denied(r + "; not approved")
	case client.StatusPending:
		return Unavailable("the request is still pending")
	}
	return Unavailable("unexpected status from the Ony server")
}

// formatDuration writes 10m, 1h, 45s, 1m30s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0 && d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.Round(time.Millisecond).String()
}
