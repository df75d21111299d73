package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// DB exposes a store's pool to tests that look at River's rows.
func DB(s *Store) *sql.DB { return s.db }

// QueryText is a named query of queries.sql as the dialect runs it (the plan test explains it).
func (s *Store) QueryText(name string) string { return s.query(name) }

// PromoteOnce runs one pass of the scheduled-job promoter (wake.go) with the given horizon end.
func (s *Store) PromoteOnce(ctx context.Context, until time.Time) error {
	return s.promoteOnce(ctx, until)
}
