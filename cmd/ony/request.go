package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/ask"
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

// createAttempts is how many times ony request tries to create the handoff: network errors, 5xx and
// 429 are retried under the same idempotency key (package ask).
const createAttempts = ask.DefaultAttempts

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
		content, err := ask.ReadPayload(*payloadFile, stdin)
		if err != nil {
			return requestErr("%v", err)
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

	h, err := ask.Run(ctx, c, baseURL, ask.Options{Request: req, IdempotencyKey: *idemKey, Attempts: createAttempts,
		Wait: *wait, JSON: *asJSON}, stdout, stderr)
	if err != nil {
		return requestErr("%v", err)
	}
	if !*wait {
		return nil
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
