package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ony-ai/ony/internal/hook"
)

const hookUsage = `usage:
  ony hook claude-code [flags]   Claude Code PreToolUse command hook: the tool call as JSON on stdin,
  ony hook codex [flags]         the decision as JSON on stdout; Codex sends the same fields

Asks a human through Ony before the tool call runs, and FAILS CLOSED: the exit status is always 0 and
stdout always one decision. Any error (server down, bad token, malformed input, its own deadline) is
a deny with a reason the model can read, never a crash or a non-zero exit, which would let the tool run.

flags:
  --deadline D            give up and deny after D (default 55s; or ONY_HOOK_DEADLINE). Set it below
                          the hook timeout you configure in .claude/settings.json, by 5 s or more: a hook
                          the agent kills at its timeout lets the tool run
  --timeout D             how long a human has to decide, as sent to Ony (default 10m, at least 10s;
                          or ONY_HOOK_TIMEOUT). While the hook waits the deadline bounds it; a request
                          still pending at the deadline is withdrawn
  --policy FILE           local allow rules, YAML (or ONY_HOOK_POLICY); see docs/hooks.md
  --no-default-allow      do not allow the read-only tools (Read, Glob, Grep, LS, NotebookRead,
                          TodoWrite, BashOutput) without asking
  --max-payload-bytes N   truncate what the human sees to N bytes (default 1048576, the server's default
                          handoffs.max_payload_bytes)
  --url, --token, --client-config   the server and device token (or ONY_URL, ONY_TOKEN / ONY_TOKEN_FILE,
                          ONY_CLIENT_CONFIG, ~/.config/ony/agent.yaml)`

// cmdHook runs `ony hook AGENT`. Whatever happens it writes exactly one decision to stdout and returns
// nil, so the process exits 0: a non-zero exit or a crash would let the agent run the tool.
func cmdHook(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	agent := hook.AgentClaudeCode
	written := false
	emit := func(r hook.Result) {
		if written {
			return
		}
		written = true
		if _, werr := stdout.Write(r.JSON(agent)); werr != nil {
			fmt.Fprintln(stderr, "ony hook: cannot write the decision to stdout")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(stderr, "ony hook: internal error (panic); denying")
			emit(hook.Unavailable("internal error"))
		}
		err = nil
	}()
	refuse := func(why string) error {
		fmt.Fprintln(stderr, "ony hook:", why)
		emit(hook.Unavailable(why))
		return nil
	}

	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case hook.AgentClaudeCode, hook.AgentCodex:
			agent = args[0]
			args = args[1:]
		case "help":
			fmt.Fprintln(stderr, hookUsage)
			return refuse("help shown; no tool call decided")
		default:
			fmt.Fprintln(stderr, hookUsage)
			return refuse(fmt.Sprintf("unknown agent %q for ony hook (want claude-code or codex)", hookWord(args[0])))
		}
	} else {
		fmt.Fprintln(stderr, hookUsage)
		return refuse("ony hook needs an agent: ony hook claude-code (or codex)")
	}

	fs := flag.NewFlagSet("hook "+agent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, hookUsage) }
	af := addAgentFlags(fs)
	deadline := fs.Duration("deadline", hook.DefaultDeadline, "deny after this long (or ONY_HOOK_DEADLINE)")
	timeout := fs.Duration("timeout", hook.DefaultTimeout, "the handoff's timeout (or ONY_HOOK_TIMEOUT)")
	policyPath := fs.String("policy", "", "policy file (or ONY_HOOK_POLICY)")
	noDefault := fs.Bool("no-default-allow", false, "do not allow read-only tools without asking")
	maxPayload := fs.Int("max-payload-bytes", hook.DefaultMaxPayload, "truncate the payload to this many bytes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return refuse("help shown; no tool call decided")
		}
		return refuse("bad flags: " + hookLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return refuse(fmt.Sprintf("unexpected argument %q", hookWord(fs.Arg(0))))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range []struct {
		flag, env string
		dst       *time.Duration
	}{{"deadline", "ONY_HOOK_DEADLINE", deadline}, {"timeout", "ONY_HOOK_TIMEOUT", timeout}} {
		if v := os.Getenv(e.env); v != "" && !set[e.flag] {
			d, err := time.ParseDuration(v)
			if err != nil {
				return refuse(fmt.Sprintf("%s is not a duration", e.env))
			}
			*e.dst = d
		}
	}
	switch {
	case *deadline < time.Second:
		return refuse("--deadline must be at least 1s")
	case *timeout < hook.MinTimeout:
		return refuse(fmt.Sprintf("--timeout must be at least %s (the server's minimum)", hook.MinTimeout))
	case *maxPayload < 4096:
		return refuse("--max-payload-bytes must be at least 4096")
	}
	if *policyPath == "" && !set["policy"] {
		*policyPath = os.Getenv("ONY_HOOK_POLICY")
	}
	var policy *hook.Policy
	switch {
	case *policyPath != "":
		p, err := hook.LoadPolicy(*policyPath, !*noDefault)
		if err != nil {
			return refuse(hookLine(err.Error()))
		}
		policy = p
	case !*noDefault:
		policy = hook.DefaultPolicy()
	}

	res := hook.Run(ctx, hook.Config{
		Agent:      agent,
		Policy:     policy,
		Deadline:   *deadline,
		Timeout:    *timeout,
		MaxPayload: *maxPayload,
		Log:        stderr,
		Connect: func() (hook.Server, error) {
			c, err := af.client()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
	}, stdin)
	emit(res)
	return nil
}

func hookLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// oneWord bounds an argument quoted back in a message.
func hookWord(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
