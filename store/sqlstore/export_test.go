package sqlstore

// QueryText is a named query of queries.sql as the dialect runs it (the plan test explains it).
func (s *Store) QueryText(name string) string { return s.query(name) }
