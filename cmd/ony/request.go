package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/client"
)

const requestUsage = `usage: ony request --action ACTION --title TITLE [flags]

Ask a human to decide, and with --wait block until they have.

  --action ACTION             what the agent wants to do: deploy, shell.exec, db.migrate, … (required)
  --title TITLE               one line for the human (required)
  --summary TEXT              more context
  --payload-file FILE         attach FILE (- for stdin) for the human to inspect; sent, never printed
  --payload-stdin             attach standard input
  --payload-kind KIND         command, diff, log or text (default: command for shell.* actions, else text)
  --label KEY=VALUE           a label such as env=prod; repeat for more
  --option ID:LABEL[:approves]  an answer the human can give; repeat (default: approve / deny)
  --callback-url URL          Ony POSTs the final state there, signed (Standard Webhooks)
  --timeout DURATION          how long a human has, e.g. 10m (at least 10s; default: the server's)
  --wait                      block until the handoff is approved, denied, expired or cancelled
  --json                      print the handoff as JSON instead of a line of text
  --idempotency-key KEY       repeating the command with the same KEY never creates a second handoff
                              (default: a random key per invocation, reused across its own retries)
  --url URL, --token TOKEN, --client-config FILE
                              the server and device token; prefer ONY_URL and ONY_TOKEN or
                              ONY_TOKEN_FILE (flags show in ps), or ~/.config/ony/agent.yaml

Without --wait it prints the handoff id (or its JSON) and exits 0 once the handoff exists.

exit status:
  0  approved (or, without --wait, created)
  1  denied (the human's comment is printed)
  2  expired: nobody decided in time
  3  cancelled
  4  usage error, or the server refused or could not be reached`

// Exit codes of ony request. Usage errors are 4 here, not 2 as elsewhere: 2 means "expired".
const (
	exitApproved     = 0
	exitDenied       = 1
	exitExpired      = 2
	exitCancelled    = 3
	exitRequestError = 4
)

// Create retry policy: network errors, 5xx and 429 are retried under the same idempotency key, so a
// request whose answer was lost is replayed rather than created twice.
const (
	createAttempts       = 5
	createAttemptTimeout = 30 * time.Second
	createFirstBackoff   = 500 * time.Millisecond
	// waitGrace is how long past expires_at ony request keeps waiting for the server to report expiry.
	waitGrace = 30 * time.Second
	// maxRequestPayload bounds what is read from --payload-file or stdin; the server has its own,
	// smaller and configurable, limit.
	maxRequestPayload = 64 << 20
)

var payloadKinds = []string{"command", "diff", "log", "text"}

// requestErr is a usage or server error: exit status 4.
func requestErr(format string, args ...any) error {
	return &exitError{code: exitRequestError, msg: fmt.Sprintf(format, args...)}
}

// cmdRequest is `ony request`. Every error it returns is an *exitError whose code is one of the exit
// statuses above, so that no failure can be mistaken for "denied" (1) or "expired" (2).
func cmdRequest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := runRequest(ctx, args, stdin, stdout, stderr)
	var ee *exitError
	if err != nil && (!errors.As(err, &ee) || ee.code < exitDenied || ee.code > exitRequestError) {
		return requestErr("%v", err)
	}
	return err
}

// optionFlag collects repeated --option ID:LABEL[:approves] flags.
type optionFlag []client.Option

func (o *optionFlag) String() string {
	if o == nil {
		return ""
	}
	parts := make([]string, len(*o))
	for i, op := range *o {
		parts[i] = op.ID + ":" + op.Label
		if op.Approves {
			parts[i] += ":approves"
		}
	}
	return strings.Join(parts, ",")
}

func (o *optionFlag) Set(s string) error {
	id, label, ok := strings.Cut(s, ":")
	id = strings.TrimSpace(id)
	if !ok || id == "" {
		return fmt.Errorf("want ID:LABEL[:approves], got %q", s)
	}
	approves := false
	if i := strings.LastIndexByte(label, ':'); i >= 0 {
		switch strings.ToLower(strings.TrimSpace(label[i+1:])) {
		case "approves", "true":
			approves, label = true, label[:i]
		case "false", "denies":
			label = label[:i]
		}
	}
	label = strings.TrimSpace(label)
	if label == "" {
		return fmt.Errorf("option %q has no label: want ID:LABEL[:approves]", id)
	}
	*o = append(*o, client.Option{ID: id, Label: label, Approves: approves})
	return nil
}

func runRequest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, requestUsage) }
	action := fs.String("action", "", "")
	title := fs.String("title", "", "")
	summary := fs.String("summary", "", "")
	payloadFile := fs.String("payload-file", "", "")
	payloadStdin := fs.Bool("payload-stdin", false, "")
	payloadKind := fs.String("payload-kind", "", "")
	labels := labelFlag{}
	fs.Var(labels, "label", "")
	var options optionFlag
	fs.Var(&options, "option", "")
	callbackURL := fs.String("callback-url", "", "")
	timeout := fs.Duration("timeout", 0, "")
	wait := fs.Bool("wait", false, "")
	asJSON := fs.Bool("json", false, "")
	idemKey := fs.String("idempotency-key", "", "")
	agent := addAgentFlags(fs)
	if err := fs.Parse(args); err != nil {
		// The flag package has already printed the usage.
		return requestErr("%v", err)
	}
	if fs.NArg() > 0 {
		return requestErr("unexpected argument %q (quote a title with spaces)\n%s", fs.Arg(0), requestUsage)
	}
	if strings.TrimSpace(*action) == "" || strings.TrimSpace(*title) == "" {
		return requestErr("--action and --title are required\n%s", requestUsage)
	}
	if *timeout < 0 {
		return requestErr("--timeout must not be negative")
	}
	if *payloadFile != "" && *payloadStdin {
		return requestErr("give --payload-file or --payload-stdin, not both")
	}
	kind := *payloadKind
	if kind != "" && !slices.Contains(payloadKinds, kind) {
		return requestErr("--payload-kind must be one of %s", strings.Join(payloadKinds, ", "))
	}
	if kind != "" && *payloadFile == "" && !*payloadStdin {
		return requestErr("--payload-kind needs --payload-file or --payload-stdin")
	}
	if kind == "" {
		kind = "text"
		if strings.HasPrefix(strings.TrimSpace(*action), "shell.") {
			kind = "command"
		}
	}
	if *idemKey == "" {
		*idemKey = client.NewIdempotencyKey()
	}

	req := client.CreateRequest{Action: *action, Title: *title, Summary: *summary, Options: options,
		CallbackURL: *callbackURL, Timeout: *timeout}
	if len(labels) > 0 {
		req.Labels = labels
	}
	if *payloadFile != "" || *payloadStdin {
		content, err := readRequestPayload(*payloadFile, stdin)
		if err != nil {
			return err
		}
		req.Payload = &client.Payload{Kind: kind, Content: content}
	}

	baseURL, token, err := agent.resolve()
	if err != nil {
		return requestErr("%v", err)
	}
	c, err := client.New(baseURL, token, nil)
	if err != nil {
		return requestErr("%v", err)
	}

	h, replayed, err := createWithRetry(ctx, c, req, *idemKey, stderr)
	if err != nil {
		return requestErr("%s", describeAPIError("create the handoff", baseURL, err))
	}
	if replayed {
		fmt.Fprintf(stderr, "ony: handoff %s already existed for this idempotency key; not created again\n", h.ID)
	}
	if !*wait {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(h)
		}
		_, err := fmt.Fprintln(stdout, h.ID)
		return err
	}

	if !h.Final() {
		fmt.Fprintf(stderr, "ony: waiting for a human decision on %s (risk %s, expires in %s) …\n",
			h.ConsoleURL, h.Risk, formatDuration(time.Until(h.ExpiresAt)))
		h, err = waitFinal(ctx, c, h, baseURL)
		if err != nil {
			return err
		}
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(h); err != nil {
			return requestErr("%v", err)
		}
	} else {
		fmt.Fprintln(stdout, describeFinal(h))
	}
	switch h.Status {
	case client.StatusApproved:
		return nil
	case client.StatusDenied:
		return &exitError{code: exitDenied, msg: "handoff " + h.ID + " was denied"}
	case client.StatusExpired:
		return &exitError{code: exitExpired, msg: "handoff " + h.ID + " expired: nobody decided in time"}
	case client.StatusCancelled:
		return &exitError{code: exitCancelled, msg: "handoff " + h.ID + " was cancelled"}
	}
	return requestErr("handoff %s ended with an unknown status %q", h.ID, h.Status)
}

// readRequestPayload reads --payload-file (- is stdin) or, with file empty, stdin. The content is sent to the
// server and never printed.
func readRequestPayload(file string, stdin io.Reader) (string, error) {
	r, name := stdin, "standard input"
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", requestErr("payload: %v", err)
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxRequestPayload+1))
	if err != nil {
		return "", requestErr("payload: read %s: %v", name, err)
	}
	if len(b) > maxRequestPayload {
		return "", requestErr("payload: %s is over %d bytes", name, maxRequestPayload)
	}
	if !utf8.Valid(b) {
		return "", requestErr("payload: %s is not UTF-8 text", name)
	}
	return string(b), nil
}

// createWithRetry posts the handoff, retrying network errors, 5xx and 429 with backoff under the same
// idempotency key.
func createWithRetry(ctx context.Context, c *client.Client, req client.CreateRequest, key string, stderr io.Writer) (*client.Handoff, bool, error) {
	backoff := createFirstBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, createAttemptTimeout)
		h, replayed, err := c.Create(actx, req, key)
		cancel()
		if err == nil || attempt == createAttempts || !client.Retryable(err) || ctx.Err() != nil {
			return h, replayed, err
		}
		fmt.Fprintf(stderr, "ony: could not create the handoff (%s); retrying in %s\n", shortError(err), backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		backoff *= 2
	}
}

// waitFinal waits until h is final. It gives up waitGrace after the handoff was due to expire (by the
// local clock, or by its own timeout counted from now, whichever is later, so clock skew cannot cut
// it short): by then the server should have reported it expired.
func waitFinal(ctx context.Context, c *client.Client, h *client.Handoff, baseURL string) (*client.Handoff, error) {
	d := max(time.Until(h.ExpiresAt), h.ExpiresAt.Sub(h.CreatedAt)) + waitGrace
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	final, err := c.Wait(wctx, h.ID)
	switch {
	case err == nil:
		return final, nil
	case ctx.Err() != nil:
		return nil, requestErr("interrupted while waiting; handoff %s is still pending (%s)", h.ID, h.ConsoleURL)
	case wctx.Err() != nil:
		return nil, requestErr("the server did not report handoff %s final %s after it was due to expire", h.ID, waitGrace)
	}
	return nil, requestErr("%s", describeAPIError("wait for handoff "+h.ID, baseURL, err))
}

// describeFinal is the one-line outcome: `approved by Ana via api: "go ahead"`,
// `expired (no human decision within 10m)`.
func describeFinal(h *client.Handoff) string {
	if h.Status == client.StatusExpired {
		return "expired (no human decision within " + formatDuration(h.ExpiresAt.Sub(h.CreatedAt)) + ")"
	}
	var b strings.Builder
	b.WriteString(printable(h.Status))
	d := h.Decision
	if d == nil {
		return b.String()
	}
	if d.By != nil {
		name := d.By.Name
		if name == "" {
			name = d.By.Kind + " " + d.By.ID
		}
		b.WriteString(" by " + printable(name))
	}
	if d.Channel != "" {
		b.WriteString(" via " + printable(d.Channel))
	}
	if d.Option != "" && d.Option != "approve" && d.Option != "deny" {
		b.WriteString(" (option " + strconv.Quote(d.Option) + ")")
	}
	if d.Comment != "" {
		b.WriteString(": " + strconv.Quote(d.Comment))
	}
	return b.String()
}

// printable drops control characters, so that a name cannot move the cursor or recolor a terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// formatDuration writes 10m rather than 10m0s.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// describeAPIError explains a failed call without repeating the client's "ony:" prefix.
func describeAPIError(what, baseURL string, err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		msg := fmt.Sprintf("could not %s: the server answered %d %s: %s", what, ae.Status, ae.Code, ae.Message)
		if ae.Status == 401 {
			msg += " (check the device token: ONY_TOKEN, ONY_TOKEN_FILE or --token)"
		}
		return msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		where := baseURL
		if u, perr := url.Parse(baseURL); perr == nil {
			where = u.Redacted()
		}
		return fmt.Sprintf("could not %s: cannot reach Ony at %s: %v", what, where, ue.Err)
	}
	return fmt.Sprintf("could not %s: %v", what, err)
}

func shortError(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", ae.Status, ae.Code)
	}
	return err.Error()
}
