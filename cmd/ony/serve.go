package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/org"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := app.NewLogger(stderr, cfg.Log)
	warnUnknownEnv(logger, os.Environ())
	// Bind before setting anything up: with a port taken, a first start would otherwise create the
	// organization and print its only copy of the password and token, then fail.
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ops, err := app.ListenOps(cfg)
	if err != nil {
		l.Close()
		return err
	}
	unbind := func() {
		l.Close()
		if ops != nil {
			ops.Close()
		}
	}
	ready := refuseUntilReady(l.(*net.TCPListener))
	a, err := app.New(ctx, cfg, logger, app.Options{})
	if err != nil {
		unbind()
		return err
	}
	a.Ops = ops
	o, d, err := org.Service{Store: a.Store, Audit: a.Audit}.Bootstrap(ctx, cfg.Bootstrap.OrgName, cfg.Bootstrap.AdminEmail)
	if err != nil {
		unbind()
		a.Close(ctx)
		return fmt.Errorf("bootstrap: %w", err)
	}
	if o != nil {
		// Printed to stdout, never logged: these secrets exist nowhere else.
		fmt.Fprint(stdout, firstStartBanner(cfg.Bootstrap.OrgName, cfg.PublicURL, o, d))
	}
	if err := a.StartJobs(ctx); err != nil {
		unbind()
		a.Close(ctx)
		return err
	}
	if err := ready(); err != nil {
		unbind()
		a.Close(ctx)
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	logger.Info("ony listening", "addr", l.Addr().String(), "public_url", cfg.PublicURL, "database", a.Store.Dialect(),
		"coordination", coordKind(cfg.Redis.URL.Value()))
	return a.Serve(ctx, l)
}

func coordKind(redisURL string) string {
	if redisURL == "" {
		return "memory"
	}
	return "redis"
}

func cmdMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs, cfgPath := newFlags("migrate", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := app.NewLogger(stderr, cfg.Log)
	warnUnknownEnv(logger, os.Environ())
	dialect, err := app.Migrate(ctx, cfg, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ony: %s database is up to date\n", dialect)
	return nil
}

func cmdConfigCheck(args []string, stdout io.Writer) error {
	fs, cfgPath := newFlags("config check", io.Discard)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	// A variable Ony does not read is a mistake here, though serve only warns: check is where an
	// operator asks whether the environment says what they meant.
	if unknown := config.UnknownEnvErrors(os.Environ()); unknown != nil {
		var ce *configError
		if errors.As(err, &ce) {
			ce.errs.List = append(ce.errs.List, unknown.List...)
			return ce
		}
		if err == nil {
			return &configError{unknown}
		}
	}
	if err != nil {
		return err
	}
	// The ladders are configuration too: the same mistakes `ony serve` would refuse at start.
	if _, _, err := app.Ladders(cfg, app.BuiltinKinds()); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	b, err := cfg.Redacted()
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// refuseUntilReady closes every connection l accepts until the function it returns is called: the
// port is held while the instance is set up, and a client that connects meanwhile (a readiness probe)
// fails at once, as when nothing listened, instead of waiting in the backlog to be answered long after
// it gave up.
func refuseUntilReady(l *net.TCPListener) (ready func() error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return // the deadline ready sets, or the listener closed
			}
			c.Close()
		}
	}()
	return func() error {
		if err := l.SetDeadline(time.Unix(1, 0)); err != nil {
			return err
		}
		<-done
		return l.SetDeadline(time.Time{})
	}
}

// firstStartBanner is what the first start prints once: the organization, the admin's password and
// the first agent token, then lines to paste — the agent's environment, and a handoff asked, decided
// and waited for — that work as printed.
func firstStartBanner(orgName, publicURL string, o *org.CreatedOrg, d *org.CreatedDevice) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
Ony created its first organization %q (%s).
  Admin email:     %s
  Admin password:  %s   (shown once)
  Agent token:     %s   (shown once; device %s)

Open the console at %s and sign in with the email and password above.

The password is the admin's own, not a temporary one: keep it in a password manager. The admin changes
it with POST /v1/auth/password (docs/api.md); if it is lost, this sets a new one and prints it:
  ony admin reset-password --org %s --email %s

Point an agent's shell at Ony (ony request, ony hook, ony mcp and the lines below read these):
  export ONY_URL=%s ONY_TOKEN=%s

Try it: the agent asks, the admin signs in and approves, the agent's wait returns the decision.
  ID=$(curl -s -X POST "$ONY_URL/v1/handoffs" -H "Authorization: Bearer $ONY_TOKEN" \
       -d '{"action":"shell.exec","title":"Clean build dir","payload":{"kind":"command","content":"make clean"}}' | jq -r .id)
  curl -s -c ony.cookies -X POST "$ONY_URL/v1/auth/login" -H 'Content-Type: application/json' \
       -d '{"email":"%s","password":"%s"}'
  curl -s -b ony.cookies -X POST "$ONY_URL/v1/handoffs/$ID/decide" -H 'Content-Type: application/json' \
       -d '{"option":"approve","comment":"go ahead"}'
  curl -s "$ONY_URL/v1/handoffs/$ID/wait?timeout=60s" -H "Authorization: Bearer $ONY_TOKEN"
(Without jq, end the first command with | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4 instead.)

`, orgName, o.OrgID, o.AdminEmail, o.AdminPassword, d.Token, d.DeviceID, strings.TrimRight(publicURL, "/")+"/console/",
		o.OrgID, o.AdminEmail, shellQuote(publicURL), shellQuote(d.Token), o.AdminEmail, o.AdminPassword)
	return b.String()
}

// shellQuote returns s as one shell word: as is when it is plain, else in single quotes.
func shellQuote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
