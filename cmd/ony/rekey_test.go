package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/store"
)

// TestAdminRekey: after a new key is added, rekey re-seals the TOTP secrets under it (and only once).
func TestAdminRekey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newAdminCLI(t)
	orgID := c.createOrg()
	if r := c.run("rekey"); r.code != 0 || r.stdout != "re-sealed 0 TOTP secret(s) under key v1\n" {
		t.Fatalf("rekey with nothing to do:\n%s", r)
	}
	boss := c.user("boss@acme.test")
	cfg, err := config.Load(c.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := app.OpenStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kr1, err := keyring.LoadOrCreate(c.dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := totp.New(totp.Deps{Store: s, Keyring: kr1}, totp.Config{}).Begin(ctx, orgID, boss.ID, boss.Email); err != nil {
		t.Fatal(err)
	}
	// Configure the file's key and a new v2 (configured keys replace the file).
	old, err := os.ReadFile(filepath.Join(c.dataDir, "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	var v1 string
	for _, l := range strings.Split(string(old), "\n") {
		if strings.HasPrefix(l, "v1:") {
			v1 = strings.TrimSpace(l)
		}
	}
	v2, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	v2 = "v2:" + strings.TrimPrefix(v2, "v1:")
	yaml := "data_dir: " + c.dataDir + "\nlog:\n  level: warn\nkeyring:\n  keys: [\"" + v1 + "\", \"" + v2 + "\"]\n"
	if err := os.WriteFile(c.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run("rekey"); r.code != 0 || r.stdout != "re-sealed 1 TOTP secret(s) under key v2\n" {
		t.Fatalf("rekey:\n%s", r)
	}
	if r := c.run("rekey"); r.code != 0 || r.stdout != "re-sealed 0 TOTP secret(s) under key v2\n" {
		t.Fatalf("second rekey:\n%s", r)
	}
	var row store.UserTOTP
	if err := s.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { row, err = tx.UserTOTP(ctx, boss.ID); return err }); err != nil {
		t.Fatal(err)
	}
	kr2, err := keyring.Parse([]string{v2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr2.Open(row.Secret, []byte("ony/totp/v1|"+orgID+"|"+boss.ID)); err != nil {
		t.Fatalf("the re-sealed secret does not open with v2 alone: %v", err)
	}
}
