package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
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
