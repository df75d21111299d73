package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
)

// OpenExisting creates nothing: a missing file stays missing (no directory, no lock file), a file
// without Ony's schema is ErrNoSchema, one behind the binary is ErrSchemaOld and is not migrated.
func TestOpenExisting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := sqlite.OpenExisting(ctx, path, testdb.Discard); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("a missing file: %v, want ErrNoSchema", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting created the directory: %v", err)
	}

	empty := filepath.Join(t.TempDir(), sqlite.FileName)
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenExisting(ctx, empty, testdb.Discard); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("an empty file: %v, want ErrNoSchema", err)
	}

	s, err := sqlite.Open(ctx, path, testdb.Discard)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := s.SchemaVersion(ctx)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = sqlite.OpenExisting(ctx, path, testdb.Discard); err != nil {
		t.Fatalf("a migrated file: %v", err)
	}
	s.Close()

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM ony_schema_migrations WHERE version = ?`, latest); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenExisting(ctx, path, testdb.Discard); !errors.Is(err, store.ErrSchemaOld) {
		t.Fatalf("a file one migration behind: %v, want ErrSchemaOld", err)
	}
	var now int
	if err := db.QueryRow(`SELECT max(version) FROM ony_schema_migrations`).Scan(&now); err != nil || now != latest-1 {
		t.Fatalf("OpenExisting migrated: version %d (%v), want %d", now, err, latest-1)
	}
}

// Analyze's statistics reach every connection, not only the one that gathered them (a connection
// loads them with the schema); when they did not change, Analyze leaves the schema alone.
func TestAnalyzeReachesEveryConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName), testdb.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	for _, q := range []string{`CREATE TABLE skew (a INTEGER, b INTEGER)`, `CREATE INDEX skew_b ON skew (b)`, `CREATE INDEX skew_a ON skew (a)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	held, err := db.Conn(ctx) // Analyze runs on another connection while this one is held
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	plan := func(tag string) string {
		t.Helper()
		// The count reads the database, and so sees a changed schema, as any real statement would;
		// the tag keeps the statement cache from reusing the other plan.
		var n int
		var out []string
		err := held.QueryRowContext(ctx, `SELECT count(*) FROM skew`).Scan(&n)
		if err == nil {
			var rows *sql.Rows
			rows, err = held.QueryContext(ctx, `EXPLAIN QUERY PLAN /* `+tag+` */ SELECT count(*) FROM skew WHERE a = 1 AND b = 5`)
			for err == nil && rows.Next() {
				var id, parent, unused int
				var detail string
				err = rows.Scan(&id, &parent, &unused, &detail)
				out = append(out, detail)
			}
			if err == nil {
				err = rows.Close()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "; ")
	}
	// Without statistics both indexes look alike, and SQLite takes skew_a.
	if p := plan("before"); !strings.Contains(p, "skew_a") {
		t.Fatalf("before Analyze: %s, want skew_a (else this test shows nothing)", p)
	}
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
		INSERT INTO skew SELECT 1, n % 7 FROM g`); err != nil {
		t.Fatal(err)
	}
	if err := s.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	// Every row has a = 1; b narrows to a seventh.
	if p := plan("after"); !strings.Contains(p, "skew_b") {
		t.Fatalf("a connection that loaded the schema before Analyze plans %s, want skew_b", p)
	}
	version := func() (v int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := version()
	if err := s.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if got := version(); got != v {
		t.Fatalf("Analyze with nothing to analyze changed the schema version %d → %d", v, got)
	}
}
