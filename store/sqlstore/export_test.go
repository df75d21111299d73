package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/ony-ai/ony/migrations"
)

// DB exposes a store's pool to tests that look at River's rows.
func DB(s *Store) *sql.DB { return s.db }

// QueryText is a named query of queries.sql as the dialect runs it (the plan test explains it).
func (s *Store) QueryText(name string) string { return s.query(name) }

// PromoteOnce runs one pass of the scheduled-job promoter (wake.go) with the given horizon end.
func (s *Store) PromoteOnce(ctx context.Context, until time.Time) error {
	return s.promoteOnce(ctx, until)
}

// SchemaCurrent is Migrate's check for a start with nothing to migrate.
func (s *Store) SchemaCurrent(ctx context.Context) bool {
	ms, err := migrations.For(s.dialect.Name())
	return err == nil && s.schemaCurrent(ctx, ms[len(ms)-1].Version)
}
