// Package sqlstore implements store.Store once, over database/sql, for both PostgreSQL and SQLite.
// A Dialect supplies what differs: placeholders, error codes, migrations' locking and the tenant backstop.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/ony-ai/ony/migrations"
	"github.com/ony-ai/ony/store"
)

// Dialect is what differs between the databases.
type Dialect interface {
	Name() string
	// Rebind turns '?' placeholders into the dialect's own.
	Rebind(query string) string
	IsUniqueViolation(err error) bool
	// IsReadOnlyViolation recognises a write the database refused in a read-only transaction.
	IsReadOnlyViolation(err error) bool
	// Analyze refreshes the planner's statistics of the store's tables.
	Analyze(ctx context.Context, db *sql.DB) error
	// IsUnavailable recognises the driver's own ways of saying the database cannot serve now (a
	// server shutting down, a failed connect); network and pool errors are recognised for every dialect.
	IsUnavailable(err error) bool
	// ScopeOrg binds the transaction to one organization for the database's own backstop (RLS).
	ScopeOrg(ctx context.Context, tx *sql.Tx, orgID string) error
	// ScopeSystem marks the transaction as an instance-level lookup.
	ScopeSystem(ctx context.Context, tx *sql.Tx) error
	// LockSuffix is what locks a selected row until the transaction ends (" FOR UPDATE"), or "" where
	// transactions are serialised anyway.
	LockSuffix() string
	// EraseAudit deletes one log's rows through the dialect's erasure path (the log is append-only
	// everywhere else).
	EraseAudit(ctx context.Context, tx *sql.Tx, orgID string) error
	// Lock serialises migrations across processes; the returned func releases it.
	Lock(ctx context.Context, db *sql.DB) (func(), error)
	RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx]
	// InsertJob writes one job row in River's table, as River's own insert would for a job with no
	// uniqueness, tags or metadata, in j.State (wake.go: "available" even before its scheduled_at,
	// which River's fetch waits for, unless it is due beyond the horizon), and returns the job's id. It
	// does not notify: the store announces committed jobs itself.
	InsertJob(ctx context.Context, tx *sql.Tx, j Job) (id int64, err error)
	// PromoteJobs makes every scheduled job due by until available and returns their due times.
	PromoteJobs(ctx context.Context, db *sql.DB, until time.Time) ([]time.Time, error)
	// HasIndex is a boolean SQL expression, true when the index named by its one '?' exists.
	HasIndex() string
}

// Job is one river_job row for Dialect.InsertJob.
type Job struct {
	Kind        string
	Args        []byte // JSON
	MaxAttempts int
	Priority    int
	Queue       string
	CreatedAt   time.Time // UTC
	ScheduledAt time.Time // UTC; CreatedAt for a job due now
	State       string    // "available" or "scheduled"
}

//go:embed queries.sql
var queriesSQL string

// Store is the shared implementation of store.Store.
type Store struct {
	db *sql.DB
	// rdb serves ReadOrg: a read-only pool beside the writer's (SQLite), or db itself.
	rdb *sql.DB
	// jdb is the job runner's pool: one whose writes take the store's write turn (SQLite), or db
	// itself.
	jdb     *sql.DB
	dialect Dialect
	q       map[string]string
	// raw holds the queries before rebinding, for the few that are extended at run time.
	raw map[string]string
	log *slog.Logger

	// inserter inserts jobs inside store transactions; it has no workers, so it works in every process
	// (CLI included). runner is the worker client, started only by `ony serve`.
	inserter *river.Client[*sql.Tx]
	mu       sync.Mutex
	runner   *river.Client[*sql.Tx]
	// notify announces committed jobs to other replicas (nil where the dialect cannot).
	notify *notifier
	// wake tells this process's workers about jobs it committed (jobs.go).
	wake *waker
	// closeListener releases what the worker client's listener holds (PostgreSQL: its pgx pool).
	closeListener func()

	// stopUpkeep ends the loops Every started; upkeep counts them.
	stopUpkeep chan struct{}
	upkeep     sync.WaitGroup

	// group, when set, runs InOrg and InSystem transactions in arrival order, several to a commit
	// (see SerializeWrites).
	group *group
}

var _ store.Store = (*Store)(nil)

// New wraps an open database. It does not migrate; call Migrate first.
func New(db *sql.DB, d Dialect, logger *slog.Logger) (*Store, error) {
	raw, err := parseQueries(queriesSQL, d)
	if err != nil {
		return nil, err
	}
	q := make(map[string]string, len(raw)+1)
	for name, text := range raw {
		q[name] = d.Rebind(text)
	}
	if _, ok := d.(writableWith); ok {
		q[loggedHandoff] = d.Rebind("WITH h AS (" + strings.TrimSuffix(raw["InsertHandoff"], ";") + ")\n" + raw["AuditEnqueueOne"])
	}
	w := newWaker()
	// On PostgreSQL the inserter never notifies from inside a transaction: the store announces
	// committed jobs after the commit (notify.go). On SQLite there are no other replicas, this process
	// wakes its own workers, and each notification is a row in River's notification table, so River
	// sends at most one a queue per FetchCooldown (100 ms), which is how another process (the CLI)
	// announces its jobs.
	driver := d.RiverDriver(db)
	jn, announces := d.(jobNotifier)
	if announces {
		driver = silentInserts{driver}
	}
	ins, err := river.NewClient[*sql.Tx](driver, &river.Config{
		Logger: quietRiver(logger),
		Hooks:  []rivertype.Hook{&dueAtOnce{}},
	})
	if err != nil {
		return nil, fmt.Errorf("store: job inserter: %w", err)
	}
	s := &Store{db: db, rdb: db, jdb: db, dialect: d, q: q, raw: raw, log: logger, inserter: ins, wake: w}
	if announces {
		s.notify = newNotifier(db, jn, func(err error) {
			// Only a wake-up: other replicas find the jobs at their next poll.
			logger.Warn("announcing committed jobs failed", "err", err)
		})
	}
	return s, nil
}

// writableWith is a dialect whose WITH clauses may insert (PostgreSQL; SQLite's only select).
type writableWith interface{ WritableWith() }

// loggedHandoff names the statement that inserts a handoff and queues its creation's record
// (InsertHandoffLogged), where the dialect is a writableWith.
const loggedHandoff = "InsertHandoffLogged"

// silentInserts is the inserter's driver: River's insert sends no notification through it.
type silentInserts struct{ riverdriver.Driver[*sql.Tx] }

func (silentInserts) SupportsListenNotify() bool { return false }

// SerializeWrites makes InOrg and InSystem transactions take turns in the order they arrive, and
// commits those that queued behind a commit together (group.go). SQLite admits one writer at a time
// anyway, but one that finds the lock taken polls for it with growing sleeps (busy_timeout), so under
// a stream of writes a late arrival could wait a second or more while others slipped in; a queue in
// the process makes the wait one commit after another. A pool whose connections take WriteTurn (the
// job runner's, on SQLite) joins the same queue.
func (s *Store) SerializeWrites() { s.group = &group{turn: make(chan struct{}, 1)} }

// UseReadPool makes ReadOrg run on db, a pool opened read-only on the same database, so reads do not
// queue for the writer's connections or lock. Close closes it too.
func (s *Store) UseReadPool(db *sql.DB) { s.rdb = db }

// UseJobsPool makes the job runner (River, and the promotion of scheduled jobs) use db, a pool on
// the same database whose connections wait for WriteTurn before they write. Close closes it too.
func (s *Store) UseJobsPool(db *sql.DB) { s.jdb = db }

// turnPatience bounds a wait for the write turn; past it the writer goes on without, and meets
// the database's own lock as it would without the turn.
const turnPatience = 10 * time.Second

// WriteTurn waits for the turn the store's own write transactions take (SerializeWrites) and
// returns its release. A writer outside the store (the job runner's pool) that takes it waits in
// the process, first come first served with the store's writes, instead of polling SQLite's lock
// with growing sleeps between them, which under a stream of writes made a create wait tens of
// milliseconds (and a starved one seconds). The turn only orders writers: the database's lock still
// excludes them, so a wait past turnPatience (a turn held across a nested write would never come)
// goes on without.
func (s *Store) WriteTurn(ctx context.Context) (release func(), err error) {
	if s.group == nil {
		return func() {}, nil
	}
	t := time.NewTimer(turnPatience)
	defer t.Stop()
	select {
	case s.group.turn <- struct{}{}:
		return func() { <-s.group.turn }, nil
	case <-t.C:
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Analyze refreshes the planner's statistics now. Migrate does it after applying migrations; on SQLite
// it is PRAGMA optimize, which re-analyzes only the tables whose size changed a lot since their last
// analysis (and reads a bounded sample), so it is cheap to repeat.
func (s *Store) Analyze(ctx context.Context) error {
	if err := s.dialect.Analyze(ctx, s.db); err != nil {
		return fmt.Errorf("store: analyze: %w", s.mapErr(err))
	}
	return nil
}

// AnalyzeEvery runs Analyze every interval until Close, so statistics follow a table that grew
// (SQLite has nothing like PostgreSQL's autovacuum to do it, and autovacuum may be off); with atOnce
// the first pass comes right away, beside the rest of the start, instead of an interval later. Call it
// at most once. A database out of reach is not logged here: on PostgreSQL the pass comes every few
// seconds, and the outage has its own reports (readiness, the requests that fail).
func (s *Store) AnalyzeEvery(interval time.Duration, atOnce bool) {
	s.every(interval, atOnce, "refreshing planner statistics", time.Minute, func(ctx context.Context) error {
		if err := s.Analyze(ctx); err != nil && !s.dialect.IsUnavailable(err) {
			return err
		}
		return nil
	})
}

// Every runs fn every interval until Close, each run bounded by timeout; a failure is logged as what
// failed. For upkeep the database does not do by itself.
func (s *Store) Every(interval time.Duration, what string, timeout time.Duration, fn func(context.Context) error) {
	s.every(interval, false, what, timeout, fn)
}

func (s *Store) every(interval time.Duration, atOnce bool, what string, timeout time.Duration, fn func(context.Context) error) {
	if s.stopUpkeep == nil {
		s.stopUpkeep = make(chan struct{})
	}
	s.upkeep.Add(1)
	go func() {
		defer s.upkeep.Done()
		run := func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := fn(ctx); err != nil {
				s.log.Warn(what+" failed", "err", err)
			}
		}
		if atOnce {
			run()
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stopUpkeep:
				return
			case <-t.C:
				run()
			}
		}
	}()
}

// parseQueries splits queries.sql on "-- name: X" markers; the texts keep their '?' placeholders.
func parseQueries(src string, d Dialect) (map[string]string, error) {
	out := map[string]string{}
	var name string
	var b strings.Builder
	flush := func() error {
		if name == "" {
			return nil
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("store: duplicate query %q", name)
		}
		q := strings.ReplaceAll(strings.TrimSpace(b.String()), "/*FOR UPDATE*/", d.LockSuffix())
		out[name] = q
		b.Reset()
		return nil
	}
	for _, line := range strings.Split(src, "\n") {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			if err := flush(); err != nil {
				return nil, err
			}
			name = strings.TrimSpace(n)
			continue
		}
		if name == "" || strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) query(name string) string {
	q, ok := s.q[name]
	if !ok {
		panic("store: unknown query " + name) // a programming error caught by the first test that runs it
	}
	return q
}

// queryWith is a named query with more SQL appended (a variable-length IN list), rebound as a whole so
// the appended placeholders are numbered after the query's own.
func (s *Store) queryWith(name, suffix string) string {
	q, ok := s.raw[name]
	if !ok {
		panic("store: unknown query " + name)
	}
	return s.dialect.Rebind(strings.TrimSuffix(q, ";") + suffix)
}

// Scrub implements store.Scrubber for dialects whose files keep deleted content (SQLite).
func (s *Store) Scrub(ctx context.Context) error {
	if d, ok := s.dialect.(interface {
		Scrub(ctx context.Context, db *sql.DB) error
	}); ok {
		return d.Scrub(ctx, s.db)
	}
	return nil
}

// DB exposes the pool to the driver packages and tests.
func (s *Store) DB() *sql.DB { return s.db }

// Rebind turns '?' placeholders into the dialect's own (tests' raw SQL).
func (s *Store) Rebind(query string) string { return s.dialect.Rebind(query) }

// Dialect implements store.Store.
func (s *Store) Dialect() string { return s.dialect.Name() }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close implements store.Store.
func (s *Store) Close() error {
	s.notify.close() // sends what committed before, while the pool is still open
	if s.stopUpkeep != nil {
		close(s.stopUpkeep)
		s.upkeep.Wait()
		s.stopUpkeep = nil
	}
	// The other pools first: the writer's last connection then checkpoints the WAL and removes it.
	var errs []error
	for _, db := range []*sql.DB{s.rdb, s.jdb} {
		if db != s.db {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// InOrg implements store.Store.
func (s *Store) InOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	if orgID == "" {
		return errors.New("store: empty org id")
	}
	var ot *orgTx
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.dialect.ScopeOrg(ctx, tx, orgID); err != nil {
			return fmt.Errorf("store: scope org: %w", err)
		}
		ot = &orgTx{s: s, tx: tx, org: orgID}
		return fn(ot)
	})
	if err == nil && ot != nil && len(ot.dueQueues) > 0 {
		// Committed: the job is visible now, so this process's workers need not wait for a poll,
		// and other replicas are told outside the transaction (notify.go).
		s.wake.poke()
		s.notify.committed(ot.dueQueues)
	}
	return err
}

// ReadOrg implements store.Store: a read-only transaction, which SQLite in WAL mode serves from one
// snapshot on the read pool (a deferred BEGIN, so without the write lock), and PostgreSQL at
// REPEATABLE READ READ ONLY on its one pool, whose default READ COMMITTED would let each statement
// see later commits.
func (s *Store) ReadOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	if orgID == "" {
		return errors.New("store: empty org id")
	}
	return s.inTxOn(ctx, s.rdb, s.readOpts(), func(tx *sql.Tx) error {
		if err := s.dialect.ScopeOrg(ctx, tx, orgID); err != nil {
			return fmt.Errorf("store: scope org: %w", err)
		}
		return fn(&orgTx{s: s, tx: tx, org: orgID, readOnly: true})
	})
}

// ReadSystem implements store.Store, as ReadOrg does.
func (s *Store) ReadSystem(ctx context.Context, fn func(store.SystemTx) error) error {
	return s.inTxOn(ctx, s.rdb, s.readOpts(), func(tx *sql.Tx) error {
		if err := s.dialect.ScopeSystem(ctx, tx); err != nil {
			return fmt.Errorf("store: scope system: %w", err)
		}
		return fn(&systemTx{s: s, tx: tx})
	})
}

// tokenLookups is a dialect whose row security needs a scope even for the token lookups: it gives
// statements that take the scope themselves (PostgreSQL's ony_device_by_token and
// ony_session_by_token).
type tokenLookups interface {
	DeviceLookup() string
	SessionLookup() string
}

// DeviceByTokenHash implements store.Store.
func (s *Store) DeviceByTokenHash(ctx context.Context, hash []byte) (store.Device, error) {
	q := s.query("DeviceByTokenHash")
	if l, ok := s.dialect.(tokenLookups); ok {
		q = l.DeviceLookup()
	}
	d, err := scanDevice(s.rdb.QueryRowContext(ctx, q, hash), s)
	return d, s.classify(err)
}

// SessionByTokenHash implements store.Store.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (store.SessionUser, error) {
	q := s.query("SessionByTokenHash")
	if l, ok := s.dialect.(tokenLookups); ok {
		q = l.SessionLookup()
	}
	var su store.SessionUser
	var err error
	su.Session, err = scanSession(scanAlso{s.rdb.QueryRowContext(ctx, q, hash), []any{&su.Name, &su.Role, &su.Active}}, s)
	return su, s.classify(err)
}

// readOpts are ReadOrg's and ReadSystem's transaction options.
func (s *Store) readOpts() *sql.TxOptions {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect.Name() == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return opts
}

// InSystem implements store.Store.
func (s *Store) InSystem(ctx context.Context, fn func(store.SystemTx) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.dialect.ScopeSystem(ctx, tx); err != nil {
			return fmt.Errorf("store: scope system: %w", err)
		}
		return fn(&systemTx{s: s, tx: tx})
	})
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.group != nil {
		return s.inGroup(ctx, fn)
	}
	return s.inTxOpts(ctx, nil, fn)
}

func (s *Store) inTxOpts(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	return s.inTxOn(ctx, s.db, opts, fn)
}

func (s *Store) inTxOn(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	defer func() { err = s.classify(err) }()
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", s.mapErr(err))
	}
	return nil
}

// classify marks an error that says the database is unreachable as store.ErrUnavailable.
func (s *Store) classify(err error) error {
	if err != nil && !errors.Is(err, store.ErrUnavailable) && s.unavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unavailable reports whether err says the database could not be reached or dropped the connection,
// rather than refusing this request: a dial or socket error, a connection the pool or server closed,
// a closed pool, or the dialect's own codes for a server that is starting or stopping.
func (s *Store) unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return true
	case s.dialect.IsUnavailable(err):
		return true
	}
	// database/sql does not export the error of a closed pool.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "sql: database is closed" {
			return true
		}
	}
	return false
}

func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case s.dialect.IsUniqueViolation(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case s.dialect.IsReadOnlyViolation(err):
		return fmt.Errorf("%w: %w", store.ErrReadOnly, err)
	}
	return err
}

// Migrate applies the embedded migrations and River's own, under the dialect's lock. A database
// migrated by a newer binary is refused with store.ErrSchemaTooNew.
func (s *Store) Migrate(ctx context.Context) error { return s.MigrateThen(ctx, nil) }

// MigrateThen migrates and then runs then (if not nil) before releasing the lock: work that changes
// the schema's catalog, such as granting a runtime role, collides with the same work from a replica
// starting at the same moment unless it is serialised too.
func (s *Store) MigrateThen(ctx context.Context, then func(context.Context) error) error {
	ms, err := migrations.For(s.dialect.Name())
	if err != nil {
		return err
	}
	// Most starts find nothing to do. Saying so takes one statement on the connection the start
	// opened; the lock and the checks under it take a second connection and several round trips,
	// tens of milliseconds on PostgreSQL before ready (issue 12).
	if then == nil && s.schemaCurrent(ctx, ms[len(ms)-1].Version) {
		return s.analyzeAtStart(ctx, 0)
	}
	unlock, err := s.dialect.Lock(ctx, s.db)
	if err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer unlock()
	if err := s.migrateLocked(ctx, ms); err != nil {
		return err
	}
	if then == nil {
		return nil
	}
	return then(ctx)
}

func (s *Store) migrateLocked(ctx context.Context, ms []migrations.Migration) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ony_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	var current sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM ony_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	latest := ms[len(ms)-1].Version
	if int(current.Int64) > latest {
		return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; run a newer ony",
			store.ErrSchemaTooNew, current.Int64, latest)
	}
	applied := 0
	for _, m := range ms[current.Int64:] {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("store: migration %04d_%s: %w", m.Version, m.Name, err)
			}
			_, err := tx.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO ony_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.Version, m.Name, nowText())
			return err
		})
		if err != nil {
			return err
		}
		s.log.Info("applied migration", "version", m.Version, "name", m.Name)
		applied++
	}
	if err := migrateRiver(ctx, s.dialect.RiverDriver(s.db), s.log); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, promoteIndex); err != nil {
		return fmt.Errorf("store: job index: %w", err)
	}
	return s.analyzeAtStart(ctx, applied)
}

// analyzeAtStart refreshes the planner's statistics after a migration that applied some. Without
// statistics the planner guesses, and with a large org's handoffs it guessed wrong (deciding one
// handoff read every pending one of the org). The periodic pass (AnalyzeEvery) keeps them fresh
// afterwards, and on PostgreSQL its first run comes at once, beside the rest of the start; here,
// before ready, it added to the time to ready (issue 12, twelfth session), so PostgreSQL needs this
// only after a schema change. SQLite's PRAGMA optimize is cheap when nothing changed and catches a
// database that grew while this binary was not running.
func (s *Store) analyzeAtStart(ctx context.Context, applied int) error {
	if applied > 0 || s.dialect.Name() == "sqlite" {
		return s.Analyze(ctx)
	}
	return nil
}

// schemaCurrent reports whether Ony's migrations and River's stand at this binary's latest and the
// job index exists: everything migrateLocked would do is done. Each migration commits with its
// version row, so a version read without the lock is one whose changes are all there. Any error (a
// fresh database has no tables to read) says no, and the locked path finds out why.
func (s *Store) schemaCurrent(ctx context.Context, latest int) bool {
	m, err := rivermigrate.New(s.dialect.RiverDriver(s.db), &rivermigrate.Config{Logger: quietRiver(s.log)})
	if err != nil {
		return false
	}
	all := m.AllVersions()
	if len(all) == 0 {
		return false
	}
	var ony, rv sql.NullInt64
	var index bool
	err = s.db.QueryRowContext(ctx, s.dialect.Rebind(`SELECT (SELECT max(version) FROM ony_schema_migrations),
		(SELECT max(version) FROM river_migration WHERE line = ?), `+s.dialect.HasIndex()),
		riverdriver.MigrationLineMain, promoteIndexName).Scan(&ony, &rv, &index)
	return err == nil && ony.Int64 == int64(latest) && rv.Int64 == int64(all[len(all)-1].Version) && index
}

// CheckSchema is Migrate's check without its changes, for commands that must not create or upgrade
// a database: ErrSchemaOld when migrations are pending, ErrSchemaTooNew when a newer binary migrated
// it. The caller has checked that the migrations table exists (ErrNoSchema otherwise).
func (s *Store) CheckSchema(ctx context.Context) error {
	ms, err := migrations.For(s.dialect.Name())
	if err != nil {
		return err
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	switch latest := ms[len(ms)-1].Version; {
	case current == 0:
		return store.ErrNoSchema
	case current > latest:
		return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; run a newer ony",
			store.ErrSchemaTooNew, current, latest)
	case current < latest:
		return fmt.Errorf("%w: the database is at version %d, this binary needs %d; run ony migrate (or start ony serve) first",
			store.ErrSchemaOld, current, latest)
	}
	return nil
}

// SchemaVersion reports the applied version of Ony's own migrations.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM ony_schema_migrations`).Scan(&v)
	return int(v.Int64), err
}
