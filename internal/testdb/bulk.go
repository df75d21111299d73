package testdb

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ony-ai/ony/store/sqlstore"
)

// Copy inserts n copies of the rows of table that match where (an SQL condition over the alias r, with
// '?' placeholders for args), in one INSERT ... SELECT over a generated counter g.n (1..n), for tests
// that need a large table fast. set replaces columns with SQL expressions over r and g.n (no
// placeholders); every other column is copied. Suffix builds such expressions. It writes in orgID's
// scope (PostgreSQL's row-level security), so every row copied must be that org's.
func Copy(t testing.TB, s *sqlstore.Store, orgID, table, where string, args []any, n int, set map[string]string) {
	t.Helper()
	ctx := context.Background()
	db := s.DB()
	cols, err := columns(ctx, s, table)
	if err != nil {
		t.Fatalf("testdb: columns of %s: %v", table, err)
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = "r." + c
		if e, ok := set[c]; ok {
			exprs[i] = e
		}
	}
	q := fmt.Sprintf(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %d)
		INSERT INTO %s (%s) SELECT %s FROM %s r, g WHERE %s`,
		n, table, strings.Join(cols, ", "), strings.Join(exprs, ", "), table, where)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if s.Dialect() == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, orgID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.Rebind(q), args...); err != nil {
		t.Fatalf("testdb: copy %s: %v", table, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Suffix is an expression for Copy's set: the text column col of the template row with "-<n>"
// appended, so each copy differs (ids, keys, addresses). With blob, col is a blob (a hash).
func Suffix(dialect, col string, blob bool) string {
	n := "CAST(g.n AS text)"
	switch {
	case blob && dialect == "postgres":
		return "r." + col + " || convert_to('-' || " + n + ", 'UTF8')"
	case blob:
		return "CAST(r." + col + " || '-' || " + n + " AS BLOB)"
	}
	return "r." + col + " || '-' || " + n
}

func columns(ctx context.Context, s *sqlstore.Store, table string) ([]string, error) {
	q := `SELECT name FROM pragma_table_info(?) ORDER BY cid`
	if s.Dialect() == "postgres" {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
	}
	rows, err := s.DB().QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 && rows.Err() == nil {
		return nil, fmt.Errorf("no table %s", table)
	}
	return out, rows.Err()
}
