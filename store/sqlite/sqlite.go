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
	s, _, err := open(ctx, path, "rwc", logger)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
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
		s.Close()
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
	// Statement and savepoint journals (group.go puts each grouped write in a savepoint) are
	// rollback copies that never need to outlive the connection: in memory they cost no writes.
	q.Add("_pragma", "temp_store(MEMORY)")
	// No commit checkpoints: the one that crosses the WAL's threshold would copy the log into the
	// database and sync it before it returns, a stall of its own for that request and the group it
	// carries. Checkpoints run beside the writers instead (checkpoint).
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	dsn := "file:" + path + "?" + q.Encode()
	db := sql.OpenDB(connector{dsn: dsn, drv: &sqlite.Driver{}})
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
	rdb, err := openReader(ctx, path)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	s.UseReadPool(rdb)
	s.SerializeWrites()
	jdb := sql.OpenDB(turnConnector{connector: connector{dsn: dsn, drv: &sqlite.Driver{}}, turn: s.WriteTurn})
	jdb.SetMaxOpenConns(JobConns)
	// Each idle connection holds its own parsed schema and page cache: one kept idle holds the
	// runner's pool to what the shared pool cost before (idle RSS 39.4 → 40.3 MiB with the default two).
	jdb.SetMaxIdleConns(1)
	s.UseJobsPool(jdb)
	s.AnalyzeEvery(AnalyzeInterval, false) // Migrate analyzed at this start
	s.Every(CheckpointInterval, "checkpointing the write-ahead log", time.Minute, func(ctx context.Context) error {
		return checkpoint(ctx, db)
	})
	return s, db, nil
}

// CheckpointInterval is how often the write-ahead log is copied into the database. At Ony's write
// rates that keeps the log to a few megabytes, about what SQLite's own threshold (1,000 pages) does.
const CheckpointInterval = 250 * time.Millisecond

// checkpoint copies what it can of the write-ahead log into the database without taking the write
// lock or waiting for readers (PASSIVE), so writers go on meanwhile; the next write after a complete
// one starts the log over.
func checkpoint(ctx context.Context, db *sql.DB) error {
	var busy, logFrames, done int
	return db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done)
}

// AnalyzeInterval is how often the store re-runs PRAGMA optimize, which re-analyzes only the tables
// whose size changed a lot (SQLite's own advice is to run it periodically on long-lived connections).
const AnalyzeInterval = 10 * time.Minute

// JobConns bounds the job runner's pool: its writes take turns anyway.
const JobConns = 4

// ReadConns bounds the read-only pool.
const ReadConns = 8

// openReader opens the read-only pool that serves ReadOrg. In WAL mode its transactions read a
// snapshot beside the writer's, with a deferred BEGIN (ReadOnly transactions skip _txlock), so they
// neither wait for the write lock nor for one of the writer's connections. mode=ro makes SQLite
// itself refuse any write (SQLITE_READONLY), which query_only, a PRAGMA any statement can undo,
// would not. The writer's pool opened the file first, so it is in WAL mode already.
func openReader(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "deferred")
	q.Set("_time_format", "sqlite")
	db := sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), drv: &sqlite.Driver{}})
	db.SetMaxOpenConns(ReadConns)
	db.SetMaxIdleConns(ReadConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open read pool %s: %w", path, err)
	}
	return db, nil
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

// IsReadOnlyViolation: a write on the read-only pool (mode=ro).
func (Dialect) IsReadOnlyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY
}

// Analyze runs PRAGMA optimize over every table (0x10000: not only those this connection used), which
// analyzes a table only when it has no statistics yet or its size changed a lot since its last
// analysis, on a bounded sample.
//
// A connection reads the statistics when it loads the schema, and only a schema change makes it load
// the schema again; ANALYZE is not one once sqlite_stat1 exists. So without more, new statistics
// reached only the connection that gathered them, and every other connection (the read pool's, the
// job runner's) kept planning, and kept its cached statements' plans (stmtcache.go), with the
// statistics it opened with. When they changed, an empty schema change makes every connection reload
// them and recompile its statements on its next statement.
func (Dialect) Analyze(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_stat1'`).Scan(&exists); err != nil {
		return err
	}
	var before string
	if exists {
		if before, err = statistics(ctx, conn); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA optimize=0x10002`); err != nil || !exists {
		return err // creating sqlite_stat1 is itself a schema change
	}
	after, err := statistics(ctx, conn)
	if err != nil || after == before {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE ony_replan (x)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE ony_replan`); err != nil {
		return err
	}
	return tx.Commit()
}

// statistics is sqlite_stat1's content, in an order that does not depend on when rows were written.
func statistics(ctx context.Context, conn *sql.Conn) (string, error) {
	var s sql.NullString
	err := conn.QueryRowContext(ctx, `SELECT group_concat(row, char(10)) FROM
		(SELECT tbl || ' ' || ifnull(idx, '') || ' ' || stat AS row FROM sqlite_stat1 ORDER BY 1)`).Scan(&s)
	return s.String, err
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

// Scrub rebuilds the database file and truncates the write-ahead log: deleted rows live on in the
// freed space of the pages they were on, in b-tree interior pages (copies of keys: ids, names) and
// in the log, which keeps every page as it was; VACUUM writes a fresh file of live rows only, and the
// checkpoint puts it in place and empties the log. VACUUM holds the write lock
// while it copies: an erasure stalls writers for about the time it takes to copy the database. A
// reader holding an older snapshot makes the checkpoint wait (busy_timeout), then report busy; it
// is tried again a few times.
func (Dialect) Scrub(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("sqlite: vacuum: %w", err)
	}
	for attempt := 0; ; attempt++ {
		var busy, logFrames, done int
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("sqlite: checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == 4 {
			return errors.New("sqlite: checkpoint: readers kept the write-ahead log busy")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// EraseAudit marks the org in audit_erasing, which the append-only triggers consult, for the length of
// the deletes.
func (Dialect) EraseAudit(ctx context.Context, tx *sql.Tx, orgID string) error {
	for _, q := range []string{
		`INSERT INTO audit_erasing (org_id) VALUES (?)`,
		`DELETE FROM audit_queue WHERE org_id = ?`,
		`DELETE FROM audit_bundles WHERE org_id = ?`,
		`DELETE FROM audit_tiles WHERE org_id = ?`,
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

// HasIndex implements sqlstore.Dialect.
func (Dialect) HasIndex() string {
	return `EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?)`
}

func (Dialect) RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx] { return riversqlite.New(db) }

// InsertJob implements sqlstore.Dialect. Times are written in the one text form River's SQLite
// queries compare correctly.
func (Dialect) InsertJob(ctx context.Context, tx *sql.Tx, j sqlstore.Job) (id int64, err error) {
	err = tx.QueryRowContext(ctx, `INSERT INTO river_job (args, created_at, kind, max_attempts, priority, queue, scheduled_at, state)
		VALUES (jsonb(?), ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		string(j.Args), riverTime(j.CreatedAt), j.Kind, j.MaxAttempts, j.Priority, j.Queue, riverTime(j.ScheduledAt), j.State).Scan(&id)
	return id, err
}

// PromoteJobs implements sqlstore.Dialect.
func (Dialect) PromoteJobs(ctx context.Context, db *sql.DB, until time.Time) ([]time.Time, error) {
	rows, err := db.QueryContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state = 'scheduled' AND scheduled_at <= ? RETURNING scheduled_at`, riverTime(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var dues []time.Time
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		var t time.Time
		switch v := v.(type) {
		case time.Time:
			t = v
		case string:
			if t, err = time.Parse("2006-01-02 15:04:05.999999999", v); err != nil {
				return nil, fmt.Errorf("sqlite: job due time %q: %w", v, err)
			}
		default:
			return nil, fmt.Errorf("sqlite: job due time of type %T", v)
		}
		dues = append(dues, t.UTC())
	}
	return dues, rows.Err()
}

func riverTime(t time.Time) string {
	return t.UTC().Round(time.Millisecond).Format("2006-01-02 15:04:05.000")
}
