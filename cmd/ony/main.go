// Command ony is Ony's single binary: the server, its migrations and its admin tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // people's time zones resolve even where the system has no zoneinfo

	"github.com/ony-ai/ony/config"
)

const usage = `ony — a human in the loop for AI agents' risky actions

usage:
  ony serve        [--config FILE]   run the server (SQLite in ./ony-data unless configured)
  ony migrate      [--config FILE]   apply database migrations and exit
  ony config check [--config FILE]   print the effective configuration, secrets masked, or every mistake
  ony version                        which build this is (version, commit, date)
  ony admin create-org    --name NAME --admin-email EMAIL [--password-stdin] [--json]
  ony admin create-device --org ORG_ID --name NAME [--json]
  ony admin revoke-device --org ORG_ID --device DEVICE_ID
  ony admin erase-org     --org ORG_ID --confirm ORG_ID   delete an organization and its audit log
  ony admin create-user   --org ORG_ID --email EMAIL --name NAME [--role member|admin|viewer] [--json]
  ony admin set-user      --org ORG_ID --email EMAIL [--name N] [--timezone TZ] [--phone +E164] [--slack-id ID]
                          [--telegram-id ID] [--quiet-hours 22:00-07:00] [--groups a,b]   ("" clears)
  ony admin reset-password --org ORG_ID --email EMAIL [--password-stdin] [--json]
                                     a new password (shown once); the person's sessions end
  ony admin rekey                    re-seal TOTP secrets under the newest keyring key
  ony demo [--listen ADDR] [--interval 20s] [--count N] [--duration D] [--wait-scale F] [--verbose | --log FILE]
                                     try Ony with simulated people, providers and agent
  ony audit key | keygen | verify | export | verify-export   (ony audit for details)
  ony retention run [--dry-run] [--json]              scrub payloads past their retention window now
                                                      (the daily sweep), or only count them
  ony risk explain --action A [--label k=v] [--policy FILE] [PAYLOAD_FILE|-]   how a handoff is scored
  ony risk check-policy FILE                          validate a risk policy
  ony ladder validate FILE|DIR...                     check escalation ladders (every mistake, with line:column)
  ony ladder explain --risk R --action A [--label k=v] [--dir DIR | FILE...] [--timeout 1h]
                                                      which ladder a handoff gets and its timeline
  ony redact [FILE] [--json]                          print FILE (or stdin) with secrets redacted

for agents (server from ONY_URL, token from ONY_TOKEN):
  ony request --action A --title T [--payload-file F] [--label k=v] [--wait]   ask and wait
             exit 0 approved, 1 denied, 2 expired, 3 cancelled, 4 usage or server error
  ony hook claude-code|codex [flags]                  PreToolUse hook for coding agents (fails closed)
  ony mcp [--permission-timeout 10m]                  MCP server over stdio (docs/mcp.md)

Configuration comes from --config (or ONY_CONFIG) and ONY_* environment variables;
see configs/ony.example.yaml.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code out of a subcommand.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			err = usageErr("usage: ony config check [--config FILE]")
		} else {
			err = cmdConfigCheck(args[2:], stdout)
		}
	case "admin":
		err = cmdAdmin(ctx, args[1:], stdin, stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "retention":
		err = cmdRetention(ctx, args[1:], stdout, stderr)
	case "risk":
		err = cmdRisk(args[1:], stdin, stdout, stderr)
	case "ladder":
		err = cmdLadder(args[1:], stdout, stderr)
	case "redact":
		err = cmdRedact(args[1:], stdin, stdout, stderr)
	case "request":
		err = cmdRequest(ctx, args[1:], stdin, stdout, stderr)
	case "hook":
		err = cmdHook(ctx, args[1:], stdin, stdout, stderr)
	case "mcp":
		err = cmdMCP(ctx, args[1:], stdin, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		err = cmdVersion(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageErr("unknown command %q\n\n%s", args[0], usage)
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	var ce *configError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "configuration has %d problem(s):\n%s\n", len(ce.errs.List), ce.Error())
		return 2
	case errors.As(err, &ee):
		fmt.Fprintln(stderr, "ony:", ee.msg)
		return ee.code
	}
	fmt.Fprintln(stderr, "ony:", err)
	return 1
}

// configError is a configuration with mistakes, which run lists and exits 2 on. Risk policies and
// ladders report their mistakes with the same type as config.Load, so the type alone does not say
// that a list came from the configuration; loadConfig says it.
type configError struct{ errs *config.Errors }

func (e *configError) Error() string { return e.errs.Error() }

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv("ONY_CONFIG")
	}
	c, err := config.Load(path, os.LookupEnv)
	var errs *config.Errors
	if errors.As(err, &errs) {
		return nil, &configError{errs}
	}
	return c, err
}
