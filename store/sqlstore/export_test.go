package sqlstore

import "database/sql"

// DB exposes a store's pool to tests that look at River's rows.
func DB(s *Store) *sql.DB { return s.db }

// QueryText is a named query of queries.sql as the dialect runs it (the plan test explains it).
func (s *Store) QueryText(name string) string { return s.query(name) }
