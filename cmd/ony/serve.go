package main

import (
	"context"
	"fmt"
	"io"
	"net"

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
	// Bind before setting anything up: with the port taken, a first start would otherwise create the
	// organization and print its only copy of the password and token, aimed at another process's port.
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	a, err := app.New(ctx, cfg, logger, app.Options{})
	if err != nil {
		l.Close()
		return err
	}
	o, d, err := org.Service{Store: a.Store, Audit: a.Audit}.Bootstrap(ctx, cfg.Bootstrap.OrgName, cfg.Bootstrap.AdminEmail)
	if err != nil {
		l.Close()
		a.Close(ctx)
		return fmt.Errorf("bootstrap: %w", err)
	}
	if o != nil {
		// Printed to stdout, never logged: these secrets exist nowhere else.
		fmt.Fprintf(stdout, `
Ony created its first organization %q (%s).
  Admin email:     %s
  Admin password:  %s   (shown once)
  Sign in:         POST %s/v1/auth/login
  Agent token:     %s   (shown once; device %s)

Try it:
  curl -s -X POST %s/v1/handoffs -H 'Authorization: Bearer %s' \
       -d '{"action":"shell.exec","title":"Clean build dir","payload":{"kind":"command","content":"rm -rf ./build"}}'

`, cfg.Bootstrap.OrgName, o.OrgID, o.AdminEmail, o.AdminPassword, cfg.PublicURL, d.Token, d.DeviceID, cfg.PublicURL, d.Token)
	}
	if err := a.StartJobs(ctx); err != nil {
		l.Close()
		a.Close(ctx)
		return err
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
	dialect, err := app.Migrate(ctx, cfg, app.NewLogger(stderr, cfg.Log))
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
