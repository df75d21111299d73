package sqlstore

import "database/sql"

// DB exposes a store's pool to tests that look at River's rows.
func DB(s *Store) *sql.DB { return s.db }
