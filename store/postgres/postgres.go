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
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"github.com/ony-ai/ony/store/sqlstore"
)

// migrationLockKey is an arbitrary constant shared by every Ony process ("ony" in ASCII).
const migrationLockKey = 0x6f6e79

// Open connects and migrates. maxConns bounds the pool.
func Open(ctx context.Context, url string, maxConns int, logger *slog.Logger) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included: say only what kind of problem it is.
		return nil, errors.New("postgres: the database URL cannot be parsed")
	}
	db := stdlib.OpenDB(*cfg)
	if maxConns <= 0 {
		maxConns = 10
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", cfg.Host, err)
	}
	s, err := sqlstore.New(db, Dialect{}, logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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

func (Dialect) ScopeOrg(ctx context.Context, tx *sql.Tx, orgID string) error {
	_, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, orgID)
	return err
}

func (Dialect) ScopeSystem(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`)
	return err
}

func (Dialect) LockSuffix() string { return " FOR UPDATE" }

// EraseAudit is the one path that may delete audit rows: the runtime role holds no DELETE grant on the
// log, so it grants itself one for this transaction only, and the append-only trigger lets through
// deletes of exactly the org named in ony.erasing.
func (Dialect) EraseAudit(ctx context.Context, tx *sql.Tx, orgID string) error {
	const tables = "audit_leaves, audit_hashes, audit_checkpoints, audit_heads"
	stmts := []struct {
		q    string
		args []any
	}{
		{`SELECT set_config('ony.erasing', $1, true)`, []any{orgID}},
		{`GRANT DELETE ON ` + tables + ` TO CURRENT_USER`, nil},
		{`DELETE FROM audit_leaves WHERE org_id = $1`, []any{orgID}},
		{`DELETE FROM audit_hashes WHERE org_id = $1`, []any{orgID}},
		{`DELETE FROM audit_checkpoints WHERE org_id = $1`, []any{orgID}},
		{`DELETE FROM audit_heads WHERE org_id = $1`, []any{orgID}},
		{`REVOKE DELETE ON ` + tables + ` FROM CURRENT_USER`, nil},
		{`SELECT set_config('ony.erasing', '', true)`, nil},
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
			return err
		}
	}
	return nil
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

func (Dialect) RiverDriver(db *sql.DB) riverdriver.Driver[*sql.Tx] { return riverdatabasesql.New(db) }
