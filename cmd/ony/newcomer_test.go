package main

// Tests of what a newcomer meets first: a start that fails leaves nothing behind, commands run in the
// wrong place refuse instead of creating an instance, the first-start banner, and `ony version`.

import (
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
)

// A first start whose port is taken must fail before it sets anything up: no organization, no
// password or token on stdout (a curl aimed at the other process's port would be worse than nothing),
// no data directory, no schema.
func TestServePortTakenCreatesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "ony-data")
			vars := map[string]string{"ONY_DATA_DIR": dataDir, "ONY_LISTEN": busy.Addr().String()}
			var pgURL string
			if dialect == "postgres" {
				pgURL = testdb.PostgresURL(t)
				vars["ONY_DATABASE_URL"] = pgURL
			}
			srv := startServe(t, vars)
			code, ok := srv.exited(30 * time.Second)
			if !ok {
				t.Fatal("ony serve kept running with its port taken")
			}
			if code == 0 {
				t.Fatal("ony serve exited 0 with its port taken")
			}
			if !hasLine(srv.Stderr(), "ony: ", "listen on "+busy.Addr().String()) {
				t.Errorf("stderr has no readable \"ony: listen on %s\" line:\n%s", busy.Addr(), srv.Stderr())
			}
			if out := srv.Stdout(); out != "" {
				t.Errorf("stdout is not empty (a password or token printed for an instance that never served):\n%s", out)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dataDir)
				t.Errorf("the data directory was created (%d entries): %v", len(entries), err)
			}
			if pgURL != "" {
				if n := tableCount(t, pgURL); n != 0 {
					t.Errorf("the schema has %d tables, want none", n)
				}
			}
		})
	}
}

// tableCount is how many tables the schema of a testdb URL holds.
func tableCount(t *testing.T, url string) int {
	t.Helper()
	db, err := sql.Open("pgx", testdb.SuperuserURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Commands that work on an existing instance — the admin and audit commands — must not create one
// when run in the wrong directory or against the wrong database: each refuses with a line that says
// where it looked, exits non-zero, and leaves no data directory, key or schema behind. Only serve and
// migrate create.
func TestCommandsRefuseMissingInstance(t *testing.T) {
	t.Parallel()
	const someID = "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10"
	commands := [][]string{
		{"admin", "create-org", "--name", "Acme", "--admin-email", "boss@acme.test"},
		{"admin", "create-device", "--org", someID, "--name", "runner"},
		{"admin", "revoke-device", "--org", someID, "--device", someID},
		{"admin", "erase-org", "--org", someID, "--confirm", someID},
		{"admin", "create-user", "--org", someID, "--email", "ana@acme.test", "--name", "Ana"},
		{"admin", "set-user", "--org", someID, "--email", "ana@acme.test", "--timezone", "UTC"},
		{"audit", "verify"},
		{"audit", "export", "--org", someID, "-o", "EXPORT"},
		{"audit", "key"},
	}
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "ony-data")
			vars := map[string]string{"ONY_DATA_DIR": dataDir}
			where := filepath.Join(dataDir, "ony.db")
			var pgURL string
			if dialect == "postgres" {
				pgURL = testdb.PostgresURL(t)
				vars["ONY_DATABASE_URL"] = pgURL
				where = "the PostgreSQL database at 127.0.0.1:5432/" + testdb.Database + " (search_path "
			}
			export := filepath.Join(t.TempDir(), "export.json")
			refused := 0
			for _, args := range commands {
				args = append([]string(nil), args...)
				for i, a := range args {
					if a == "EXPORT" {
						args[i] = export
					}
				}
				want := where
				if args[0] == "audit" && args[1] == "key" { // reads only the key
					want = filepath.Join(dataDir, "audit-signing.key")
				}
				r := runOny(t, vars, "", args...)
				name := strings.Join(args[:2], " ")
				switch {
				case r.code == 0:
					t.Errorf("ony %s exited 0 without an instance:\n%s", name, r)
				case r.stdout != "":
					t.Errorf("ony %s printed on stdout:\n%s", name, r)
				case !hasLine(r.stderr, "ony: ", want):
					t.Errorf("ony %s: no \"ony: \" line naming %q:\n%s", name, want, r)
				default:
					refused++
				}
				mustNotContain(t, "ony "+name, r.stderr, "postgres://", "applied migration", "panic:")
			}
			t.Logf("%s: %d of %d commands refused a missing instance", dialect, refused, len(commands))
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dataDir)
				t.Errorf("the data directory was created (%d entries): %v", len(entries), err)
			}
			if _, err := os.Stat(export); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("audit export created its output file: %v", err)
			}
			if pgURL != "" {
				if n := tableCount(t, pgURL); n != 0 {
					t.Errorf("the schema has %d tables, want none", n)
				}
			}
		})
	}
}

// After `ony migrate` the admin commands work on the new instance; with its signing key gone they
// refuse rather than sign with a new one.
func TestMigrateThenAdmin(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dataDir}
	if r := runOny(t, vars, "", "migrate"); r.code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	for _, f := range []string{"ony.db", "keyring", "audit-signing.key"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Errorf("after migrate: %v", err)
		}
	}
	r := runOny(t, vars, "", "admin", "create-org", "--name", "Acme", "--admin-email", "boss@acme.test")
	if r.code != 0 {
		t.Fatalf("create-org after migrate: %s", r)
	}
	orgID := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0])
	key := filepath.Join(dataDir, "audit-signing.key")
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	r = runOny(t, vars, "", "admin", "create-device", "--org", orgID, "--name", "runner")
	if r.code == 0 || r.stdout != "" || !hasLine(r.stderr, "ony: ", key) {
		t.Errorf("create-device without the signing key: want a refusal naming %s\n%s", key, r)
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create-device made a new signing key: %v", err)
	}
}
