// Package testdb gives each test its own database: a fresh SQLite file, or a fresh PostgreSQL schema
// owned by a role that row-level security binds. Under CI=true an unreachable PostgreSQL fails the test.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/store/sqlstore"
)

const (
	// AppRole is the runtime role the tests use on PostgreSQL: not a superuser, no BYPASSRLS, so the
	// row-level security policies really apply to it.
	AppRole = "ony_app"
	// OwnerRole owns the schema in the split-role setup (database.migrate_url); AppRole only uses it.
	OwnerRole = "ony_owner"
	Database  = "ony_test"
)

// Discard is a logger for tests that do not look at logs.
var Discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// AdminURL is the superuser connection used to create databases, roles and schemas.
func AdminURL() string {
	if u := os.Getenv("ONY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Dialects lists the databases every behaviour suite runs on.
var Dialects = []string{"sqlite", "postgres"}

// Open returns a migrated, empty store of the given dialect that is removed when the test ends.
func Open(t testing.TB, dialect string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	var s *sqlstore.Store
	var err error
	switch dialect {
	case "sqlite":
		path := SQLitePath(t)
		SeedSQLite(t, path)
		s, err = sqlite.Open(ctx, path, Discard)
	case "postgres":
		return OpenURL(t, PostgresURL(t))
	default:
		t.Fatalf("testdb: unknown dialect %q", dialect)
	}
	if err != nil {
		t.Fatalf("testdb: open %s: %v", dialect, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenURL opens a migrated PostgreSQL store at url (from PostgresURL).
func OpenURL(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxConns: 5}, Discard)
	if err != nil {
		t.Fatalf("testdb: open postgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// SQLitePath is a database file in the test's temporary directory.
func SQLitePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), sqlite.FileName)
}

// template is a migrated, empty SQLite database file, made once per test binary: under -race,
// migrating a fresh file took about 1.5 s and a copy of the result about 50 ms, and most tests open
// a fresh store. Opening the copy still runs Migrate, which finds nothing to apply.
var template struct {
	once sync.Once
	file []byte
	err  error
}

// SeedSQLite writes a migrated, empty Ony database to path (a file that must not exist yet), as a
// fresh install's first start would leave it.
func SeedSQLite(t testing.TB, path string) {
	t.Helper()
	template.once.Do(func() { template.file, template.err = migratedSQLite() })
	if template.err != nil {
		t.Fatalf("testdb: sqlite template: %v", template.err)
	}
	if err := os.WriteFile(path, template.file, 0o600); err != nil {
		t.Fatalf("testdb: seed %s: %v", path, err)
	}
}

func migratedSQLite() ([]byte, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ony-testdb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, sqlite.FileName)
	s, err := sqlite.Open(ctx, path, Discard)
	if err != nil {
		return nil, err
	}
	// The copy is the main file alone, so everything must be in it, not in the write-ahead log.
	_, err = s.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	s.Close()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return nil, fmt.Errorf("the write-ahead log still holds %d bytes after a checkpoint", fi.Size())
	}
	return os.ReadFile(path)
}

var setup struct {
	once sync.Once
	err  error
}

func unreachable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required under CI=true but unusable at %s: %v", redactURL(AdminURL()), err)
	}
	t.Skipf("PostgreSQL not reachable at %s (set ONY_TEST_POSTGRES_URL; CI=true makes this a failure): %v", redactURL(AdminURL()), err)
}

// PostgresURL creates a fresh schema owned by AppRole and returns a URL that connects as AppRole with
// that schema on its search_path. The schema is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return newSchema(t, AppRole)
}

// PostgresSplitURLs creates a fresh schema owned by OwnerRole and returns the runtime URL (AppRole,
// which owns nothing) and the owner's URL for database.migrate_url, both with the schema on their
// search_path.
func PostgresSplitURLs(t testing.TB) (app, owner string) {
	t.Helper()
	app = newSchema(t, OwnerRole)
	u, _ := url.Parse(app)
	u.User = url.User(OwnerRole)
	return app, u.String()
}

func newSchema(t testing.TB, owner string) string {
	t.Helper()
	setup.once.Do(func() { setup.err = prepare() })
	if setup.err != nil {
		unreachable(t, setup.err)
	}
	schema := "t_" + randomHex(8)
	admin, err := sql.Open("pgx", withDatabase(AdminURL(), Database))
	if err != nil {
		unreachable(t, err)
	}
	defer admin.Close()
	if _, err := admin.Exec(fmt.Sprintf(`CREATE SCHEMA %s AUTHORIZATION %s`, schema, owner)); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", withDatabase(AdminURL(), Database))
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`)
	})
	u, _ := url.Parse(withDatabase(AdminURL(), Database))
	u.User = url.User(AppRole)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SuperuserURL connects to the same schema as url, as the superuser (for tamper tests).
func SuperuserURL(appURL string) string {
	u, _ := url.Parse(appURL)
	a, _ := url.Parse(withDatabase(AdminURL(), Database))
	a.RawQuery = u.RawQuery
	return a.String()
}

// prepare creates the test database and the runtime role once per process. Several test binaries run
// at once, so "already exists" races are expected and ignored.
func prepare() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", AdminURL())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	stmts := []string{
		`CREATE ROLE ` + AppRole + ` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`,
		`CREATE ROLE ` + OwnerRole + ` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`,
		`CREATE DATABASE ` + Database,
		`GRANT CONNECT, CREATE ON DATABASE ` + Database + ` TO ` + AppRole,
		`GRANT CONNECT, CREATE ON DATABASE ` + Database + ` TO ` + OwnerRole,
	}
	for _, s := range stmts {
		for attempt := 0; ; attempt++ {
			_, err := db.ExecContext(ctx, s)
			if err == nil || alreadyExists(err) {
				break
			}
			if attempt < 5 && retryable(err) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("%s: %w", strings.Fields(s)[0]+" "+strings.Fields(s)[1], err)
		}
	}
	return nil
}

func alreadyExists(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "42710" || pg.Code == "42P04" || pg.Code == "23505")
}

func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "XX000" || pg.Code == "40001")
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
