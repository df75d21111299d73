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

var _ = strings.Contains
