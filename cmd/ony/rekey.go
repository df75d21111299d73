package main

// `ony admin rekey` (issue 13, totp helper): re-seal every TOTP secret under the newest keyring key,
// so an old key can be retired.

import (
	"context"
	"fmt"
	"io"

	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
)

func cmdRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin rekey", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("admin rekey takes no arguments")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := app.NewLogger(stderr, cfg.Log)
	s, err := app.OpenExistingStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	kr, err := keyring.LoadOrCreate(cfg.DataDir, keyValues(cfg.Keyring.Keys))
	if err != nil {
		return err
	}
	n, err := totp.New(totp.Deps{Store: s, Keyring: kr, Logger: logger}, totp.Config{}).Rekey(ctx)
	if err != nil {
		return fmt.Errorf("rekey: %w (%d re-sealed before the error)", err, n)
	}
	fmt.Fprintf(stdout, "re-sealed %d TOTP secret(s) under key v%d\n", n, kr.CurrentVersion())
	return nil
}

func keyValues(ss []config.Secret) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Value()
	}
	return out
}
