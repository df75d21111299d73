// Package postgres opens Ony's store on PostgreSQL (pgx through database/sql), with row-level
// security bound to each transaction's organization and migrations serialised by an advisory lock.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
)

// migrationLockKey is an arbitrary constant shared by every Ony process ("ony" in ASCII).
const migrationLockKey = 0x6f6e79

// Options say how to reach the database.
type Options struct {
	URL string
	// MigrateURL, if set, connects as the schema's owner to migrate; URL's role then gets only the
	// grants it needs at run time (see grantRuntime).
	MigrateURL string
	MaxConns   int
}

// Open connects and migrates.
func Open(ctx context.Context, o Options, logger *slog.Logger) (*sqlstore.Store, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	db, err := connect(ctx, o.URL, o.MaxConns)
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.New(db, Dialect{}, logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	if o.MigrateURL == "" {
		err = s.Migrate(ctx)
	} else {
		err = migrateAsOwner(ctx, o.MigrateURL, db, logger)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	// At once as well: a replica restarted on a grown database whose tables were never analyzed (the
	// last process stopped before its pass came) would otherwise plan its first jobs' reads on the
	// wrong index until the first tick.
	s.AnalyzeEvery(AnalyzeInterval, true)
	return s, nil
}

// AnalyzeInterval is how often the store looks for tables whose statistics are behind (Analyze). The
// look is one read of pg_stat_user_tables; a fresh install's tables grow fastest at first, and a plan
// made while one was small holds until it is analyzed.
const AnalyzeInterval = 15 * time.Second

// OpenExisting connects without migrating (o.MigrateURL is not used): a database without Ony's
// schema on the role's search_path is store.ErrNoSchema; pending migrations are store.ErrSchemaOld.
func OpenExisting(ctx context.Context, o Options, logger *slog.Logger) (*sqlstore.Store, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	db, err := connect(ctx, o.URL, o.MaxConns)
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.New(db, Dialect{}, logger)
	if err == nil {
		var found bool
		err = db.QueryRowContext(ctx, `SELECT to_regclass('ony_schema_migrations') IS NOT NULL`).Scan(&found)
		switch {
		case err != nil:
			err = fmt.Errorf("postgres: look for the schema: %w", err)
		case !found:
			err = store.ErrNoSchema
		default:
			err = s.CheckSchema(ctx)
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Where names the database a URL points at for messages — host, port, database and search_path,
// never the user's password — or "" when the URL cannot be parsed.
func Where(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return ""
	}
	w := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	if sp := cfg.RuntimeParams["search_path"]; sp != "" {
		w += " (search_path " + sp + ")"
	}
	return w
}

func connect(ctx context.Context, url string, maxConns int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included: say only what kind of problem it is.
		return nil, errors.New("postgres: the database URL cannot be parsed")
	}
	if cfg.ConnectTimeout == 0 {
		// Without one, a connect to a server that drops packets waits as long as the caller does; with
		// it, requests get "unavailable" while the database is unreachable (connect_timeout in the URL
		// overrides).
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", cfg.Host, err)
	}
	return db, nil
}

// migrateAsOwner migrates through the owner's connection and grants the runtime role (runtime's
// current_user) what it needs, and no more: no DDL, nothing on the migrations table beyond reading it,
// no DELETE on the escalation tables (erasure empties them by cascade), and on the audit log only
// SELECT and INSERT (plus moving the head forward), so the role that serves requests cannot rewrite
// history even by granting itself rights, since it owns nothing. The grants run under the migration
// lock: two replicas granting at once rewrite the same catalog rows and one of them fails with "tuple
// concurrently updated".
func migrateAsOwner(ctx context.Context, ownerURL string, runtime *sql.DB, logger *slog.Logger) error {
	owner, err := connect(ctx, ownerURL, 2) // the lock's connection and the work's
	if err != nil {
		return fmt.Errorf("migrate_url: %w", err)
	}
	defer owner.Close()
	ownerStore, err := sqlstore.New(owner, Dialect{}, logger)
	if err != nil {
		return err
	}
	return ownerStore.MigrateThen(ctx, func(ctx context.Context) error { return grantRuntime(ctx, owner, runtime) })
}

// grantRuntime gives the runtime role its grants; see migrateAsOwner.
func grantRuntime(ctx context.Context, owner, runtime *sql.DB) error {
	// The schema comes from the owner's search_path: the runtime role cannot see it before the grant.
	var role, ownerRole, schema string
	if err := runtime.QueryRowContext(ctx, `SELECT current_user`).Scan(&role); err != nil {
		return fmt.Errorf("postgres: runtime role: %w", err)
	}
	if err := owner.QueryRowContext(ctx, `SELECT current_user, current_schema()`).Scan(&ownerRole, &schema); err != nil {
		return fmt.Errorf("postgres: owner role: %w", err)
	}
	if role == ownerRole {
		return nil // one role after all: the migration's own REVOKEs are what there is
	}
	r, sc := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		`GRANT USAGE ON SCHEMA ` + sc + ` TO ` + r,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + sc + ` TO ` + r,
		`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ` + sc + ` TO ` + r,
		`REVOKE INSERT, UPDATE, DELETE ON ony_schema_migrations FROM ` + r,
		`REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM ` + r,
		`REVOKE DELETE, TRUNCATE ON audit_bundles, audit_tiles FROM ` + r, // extended while they fill (the guards bound it)
		`REVOKE DELETE, TRUNCATE ON audit_heads FROM ` + r,
		`REVOKE UPDATE ON audit_queue FROM ` + r,
		// A ladder version, once stored, is what handoffs froze: it is never edited. Sends and decision
		// tokens are only ever updated; all three leave by cascade, which runs as the owner.
		`REVOKE UPDATE, DELETE, TRUNCATE ON ladders FROM ` + r,
		`REVOKE DELETE, TRUNCATE ON escalation_sends, decision_tokens FROM ` + r,
		`GRANT EXECUTE ON FUNCTION ony_erase_audit(text) TO ` + r,
	} {
		if _, err := owner.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("postgres: grant runtime role: %w", err)
		}
	}
	return nil
}

// Dialect is PostgreSQL's sqlstore.Dialect.
type Dialect struct{}

func (Dialect) Name() string { return "postgres" }

func (Dialect) Rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (Dialect) IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// IsReadOnlyViolation: read_only_sql_transaction, a write in a READ ONLY transaction.
func (Dialect) IsReadOnlyViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "25006"
}

// Analyze analyzes the tables of the current schema (a bare ANALYZE would walk every table of the
// database, other schemas' included) that the role owns and that need it, by autovacuum's own rule:
// changed in more than 50 rows plus a tenth of the table since their last analysis. Autovacuum does
// this when it is on; it may be off, or behind a bulk load. A table never analyzed is analyzed too
// once it fills more than a page, which catches one whose change counts are lost (a crash, a restored
// or copied database) or not yet reported (a backend reports them up to seconds after its commit).
//
// It leaves out a table never analyzed that fits in one page. Analyzed empty, a table is planned as
// empty until its next analysis, and plans PostgreSQL caches per connection keep that: the
// foreign-key checks on handoffs scanned the whole table for every row inserted into
// escalation_sends, and a fresh install's creates slowed as the table grew. Analyzed with one row,
// every column looks unique, and a key lookup on handoffs was planned on any index that starts with
// org_id. Never analyzed, a small table is planned as ten pages, which keeps such lookups on their
// keys. A cached plan is planned again when its table is analyzed, which the store's pass (at the
// start, then every AnalyzeInterval) sees to as a table grows.
func (Dialect) Analyze(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT quote_ident(s.relname)
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.schemaname = current_schema() AND pg_has_role(c.relowner, 'USAGE')
		AND (s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
			OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
				AND pg_relation_size(s.relid) > current_setting('block_size')::bigint))
		ORDER BY 1`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(tables) == 0 {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE `+strings.Join(tables, ", "))
	return err
}

// IsUnavailable: a failed connect (refused, timed out, the server starting up or shutting down),
// and the codes a server sends as it goes away or cannot take another connection. A connect the
// server refused for the credentials or the database name is a configuration mistake, not an outage.
func (Dialect) IsUnavailable(err error) bool {
	if errors.Is(err, pgconn.ErrConnClosed) { // the socket went away under a pooled connection
		return true
	}
	var pg *pgconn.PgError
	hasPg := errors.As(err, &pg)
	if hasPg {
		switch {
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", // admin/crash shutdown, cannot connect now
			pg.Code == "53300": // too many connections
			return true
		}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return !hasPg || !(strings.HasPrefix(pg.Code, "28") || pg.Code == "3D000")
	}
	return false
}

func (Dialect) ScopeOrg(ctx context.Context, tx *sql.Tx, orgID string) error {
	_, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, orgID)
	return err
}

func (Dialect) ScopeSystem(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`)
	return err
}

// DeviceLookup: ony_device_by_token scopes its own query, so it runs outside a transaction.
func (Dialect) DeviceLookup() string {
	return `SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at, last_used_at FROM ony_device_by_token($1)`
}

// SessionLookup: ony_session_by_token scopes its own query, so it runs outside a transaction.
func (Dialect) SessionLookup() string {
	return `SELECT org_id, id_hash, user_id, created_at, expires_at, public_id, last_seen_at, user_agent,
		user_name, user_role, user_active FROM ony_session_by_token($1)`
}

func (Dialect) LockSuffix() string { return " FOR UPDATE" }

// EraseAudit is the one path that may delete audit rows: the ony_erase_audit function (see migration
// 0002) runs as the schema's owner and is the only holder of that power.
func (Dialect) EraseAudit(ctx context.Context, tx *sql.Tx, orgID string) error {
	_, err := tx.ExecContext(ctx, `SELECT ony_erase_audit($1)`, orgID)
	return err
}

func (Dialect) Lock(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		conn.Close()
	}, nil
}

// WritableWith marks PostgreSQL as able to insert in a WITH clause (sqlstore's InsertHandoffLogged).
func (Dialect) WritableWith() {}

// HasIndex implements sqlstore.Dialect: the name resolves in the search path, where Ony's tables are.
func (Dialect) HasIndex() string { return `to_regclass(?) IS NOT NULL` }

func (Dialect) RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx] { return riverdatabasesql.New(db) }

// InsertJob implements sqlstore.Dialect.
func (Dialect) InsertJob(ctx context.Context, tx *sql.Tx, j sqlstore.Job) (id int64, err error) {
	err = tx.QueryRowContext(ctx, `INSERT INTO river_job (args, kind, max_attempts, priority, queue, scheduled_at, state)
		VALUES ($1::jsonb, $2, $3, $4, $5, $6, $7::river_job_state) RETURNING id`,
		string(j.Args), j.Kind, j.MaxAttempts, j.Priority, j.Queue, j.ScheduledAt, j.State).Scan(&id)
	return id, err
}

// PromoteJobs implements sqlstore.Dialect.
func (Dialect) PromoteJobs(ctx context.Context, db *sql.DB, until time.Time) ([]time.Time, error) {
	rows, err := db.QueryContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state = 'scheduled' AND scheduled_at <= $1 RETURNING scheduled_at`, until)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var dues []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		dues = append(dues, t)
	}
	return dues, rows.Err()
}

// NotifyJobs implements sqlstore's job notifier: River's insert notification for each queue, on its
// own (autocommit) statement after the jobs committed, so a listening worker (RiverWorkerDriver)
// fetches at once.
func (Dialect) NotifyJobs(ctx context.Context, db *sql.DB, queues []string) error {
	payloads := make([]string, len(queues))
	for i, q := range queues {
		payloads[i] = fmt.Sprintf(`{"queue": %q}`, q) // River's own form
	}
	_, err := db.ExecContext(ctx, `SELECT pg_notify(current_schema() || '.river_insert', p) FROM unnest($1::text[]) AS p`, payloads)
	return err
}

// RiverWorkerDriver implements sqlstore's worker-driver hook: the worker client works through db like
// every other client, and LISTENs for River's insert notifications on one pgx connection, so jobs
// committed by any replica are fetched at once instead of at the next poll. Inserts stay in
// database/sql transactions; the store sends the notification (NotifyJobs) after they commit, so it
// is sent only for jobs that committed, and no request's transaction takes PostgreSQL's notification
// lock. The connection is made with db's own settings (host,
// credentials, search_path, timeouts), taken from one of db's connections; row-level security does
// not apply to it, since it only listens, and River's tables are outside it anyway.
func (Dialect) RiverWorkerDriver(ctx context.Context, db *sql.DB) (riverdriver.Driver[*sql.Tx], func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: job listener: %w", err)
	}
	var cc *pgx.ConnConfig
	err = conn.Raw(func(c any) error {
		sc, ok := c.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: job listener: unexpected connection %T", c)
		}
		cc = sc.Conn().Config().Copy()
		// The copy's handler buffers into the connection it came from; nil lets pgx bind the new
		// connection's own.
		cc.OnNotification = nil
		return nil
	})
	conn.Close()
	if err != nil {
		return nil, nil, err
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: job listener: %w", err)
	}
	pc.ConnConfig = cc
	// River hijacks the listener's connection from the pool for good: one is all it needs.
	pc.MinConns, pc.MaxConns = 0, 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: job listener: %w", err)
	}
	return riverdatabasesql.NewWithPgxListener(db, pool), pool.Close, nil
}
