// Package sqlite opens Ony's embedded default store: one SQLite file (modernc.org/sqlite, no cgo) in
// the data directory, in WAL mode with immediate transactions so concurrent writers wait, not fail.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
)

// FileName is the database file inside the data directory.
const FileName = "ony.db"

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, logger *slog.Logger) (*sqlstore.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	s, db, err := open(ctx, path, "rwc", logger)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenExisting opens the database at path without creating or migrating anything: a missing file,
// or one without Ony's schema, is store.ErrNoSchema; pending migrations are store.ErrSchemaOld.
func OpenExisting(ctx context.Context, path string, logger *slog.Logger) (*sqlstore.Store, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, store.ErrNoSchema
	}
	// mode=rw: should the file vanish between the check and the open, SQLite must not create it.
	s, db, err := open(ctx, path, "rw", logger)
	if err != nil {
		return nil, err
	}
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ony_schema_migrations'`).Scan(&n)
	switch {
	case err != nil:
		err = fmt.Errorf("sqlite: read %s: %w", path, err)
	case n == 0:
		err = store.ErrNoSchema
	default:
		err = s.CheckSchema(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// open connects to the file at path in the given SQLite open mode (rwc creates it, rw does not).
func open(ctx context.Context, path, mode string, logger *slog.Logger) (*sqlstore.Store, *sql.DB, error) {
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	db := sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), drv: &sqlite.Driver{}})
	// Readers run beside the writer in WAL mode; writers queue on busy_timeout because every
	// transaction begins IMMEDIATE, so none fails on a lock upgrade.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s, err := sqlstore.New(db, Dialect{Path: path}, logger)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, db, nil
}

// Dialect is SQLite's sqlstore.Dialect.
type Dialect struct{ Path string }

func (Dialect) Name() string           { return "sqlite" }
func (Dialect) Rebind(q string) string { return q }

func (Dialect) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// IsUnavailable: the file is locked past busy_timeout, or cannot be opened.
func (Dialect) IsUnavailable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

// SQLite has no row-level security; the store's queries carry org_id themselves.
func (Dialect) ScopeOrg(context.Context, *sql.Tx, string) error { return nil }
func (Dialect) ScopeSystem(context.Context, *sql.Tx) error      { return nil }

func (Dialect) LockSuffix() string { return "" }

// EraseAudit marks the org in audit_erasing, which the append-only triggers consult, for the length of
// the deletes.
func (Dialect) EraseAudit(ctx context.Context, tx *sql.Tx, orgID string) error {
	for _, q := range []string{
		`INSERT INTO audit_erasing (org_id) VALUES (?)`,
		`DELETE FROM audit_queue WHERE org_id = ?`,
		`DELETE FROM audit_leaves WHERE org_id = ?`,
		`DELETE FROM audit_hashes WHERE org_id = ?`,
		`DELETE FROM audit_checkpoints WHERE org_id = ?`,
		`DELETE FROM audit_heads WHERE org_id = ?`,
		`DELETE FROM audit_erasing WHERE org_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, orgID); err != nil {
			return err
		}
	}
	return nil
}

// Lock takes an exclusive flock beside the database file, so `ony migrate` and a starting server
// never migrate the same file at once.
func (d Dialect) Lock(ctx context.Context, _ *sql.DB) (func(), error) {
	f, err := os.OpenFile(d.Path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (Dialect) RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx] { return riversqlite.New(db) }

// InsertJob implements sqlstore.Dialect. Times are written in the one text form River's SQLite
// queries compare correctly.
func (Dialect) InsertJob(ctx context.Context, tx *sql.Tx, j sqlstore.Job) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO river_job (args, created_at, kind, max_attempts, priority, queue, scheduled_at, state)
		VALUES (jsonb(?), ?, ?, ?, ?, ?, ?, 'available')`,
		string(j.Args), riverTime(j.CreatedAt), j.Kind, j.MaxAttempts, j.Priority, j.Queue, riverTime(j.ScheduledAt))
	return err
}

func riverTime(t time.Time) string {
	return t.UTC().Round(time.Millisecond).Format("2006-01-02 15:04:05.000")
}
