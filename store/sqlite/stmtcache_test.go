package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"modernc.org/sqlite"
)

// TestCachedStatements: a query prepared once serves later calls, the same text can run again while
// its rows are still open (unprepared), scripts still run every statement, and a schema change is
// seen by a cached statement.
func TestCachedStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sql.OpenDB(connector{dsn: "file:" + filepath.Join(t.TempDir(), "c.db"), drv: &sqlite.Driver{}})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one connection, so every call meets the same cache
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER); CREATE TABLE u (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (n) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO u (n) VALUES (7)`); err != nil {
		t.Fatal(err) // the script created u too
	}
	const q = `SELECT n FROM t ORDER BY n`
	outer, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var sum int
	for outer.Next() {
		var n int
		if err := outer.Scan(&n); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if sum != 0+1+2 {
		t.Fatalf("sum %d, want 3", sum)
	}
	// Same text again after the rows closed: the cached statement was reset.
	var count int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE n >= ?`, 1).Scan(&count); err != nil || count != 2 {
		t.Fatalf("count %d, %v; want 2", count, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE n >= ?`, 0).Scan(&count); err != nil || count != 3 {
		t.Fatalf("count %d, %v; want 3 (stale bindings?)", count, err)
	}
	// A nested use of one text inside a transaction, whose connection is pinned.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := tx.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	r1.Next()
	var inner int
	if err := tx.QueryRowContext(ctx, q).Scan(&inner); err != nil || inner != 0 {
		t.Fatalf("nested query: %d, %v", inner, err)
	}
	var first int
	if err := r1.Scan(&first); err != nil || first != 0 {
		t.Fatalf("outer rows after nested use: %d, %v", first, err)
	}
	if !r1.Next() {
		t.Fatal("outer rows ended early after a nested use of the same text")
	}
	r1.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		if _, ok := dc.(*cachingConn).stmts[q]; !ok {
			t.Errorf("%q was not kept prepared", q)
		}
		return nil
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A schema change reaches a cached statement.
	if _, err := db.ExecContext(ctx, `ALTER TABLE t ADD COLUMN m INTEGER DEFAULT 5`); err != nil {
		t.Fatal(err)
	}
	var m int
	if err := db.QueryRowContext(ctx, `SELECT m FROM t LIMIT 1`).Scan(&m); err != nil || m != 5 {
		t.Fatalf("after ALTER: %d, %v", m, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE n >= ?`, 2).Scan(&count); err != nil || count != 1 {
		t.Fatalf("cached statement after ALTER: %d, %v", count, err)
	}
}
