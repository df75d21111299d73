package postgres_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/storetest"
)

// analyzed reports whether table has been analyzed by anyone (the store's ANALYZE or autovacuum).
func analyzed(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var done bool
	err := db.QueryRowContext(context.Background(), `SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL
		FROM pg_stat_user_tables WHERE relid = $1::regclass`, table).Scan(&done)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAnalyzeFollowsGrowth: a new installation's tables are empty when migrations finish. The
// foreign-key check behind every send row is a key lookup on handoffs, and PostgreSQL caches its plan
// per connection; planned on a table analyzed empty, it became a scan of the whole table and stayed
// one as the table grew (issue 12: creates slowed with every handoff on a fresh install). Analyzed
// with one row, every column looks unique, and key lookups were planned on other indexes. So a table
// is not analyzed while it fits in a page, and once it has grown the store's pass analyzes it, after
// which the check is planned on the primary key.
func TestAnalyzeFollowsGrowth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url) // migrates, then analyzes what needs it

	db := openDB(t, url)
	f := storetest.NewFixture(t, s, "a")
	if err := s.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"handoffs", "orgs", "users"} { // one row each
		if analyzed(t, db, table) {
			t.Errorf("%s was analyzed while it fitted in a page", table)
		}
	}

	testdb.Copy(t, s, f.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{f.Org.ID, f.Handoff.ID}, 500,
		map[string]string{"id": testdb.Suffix("postgres", "id", false)})
	// What counts is an analysis that saw the 500 rows.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		var rows float64
		if err := db.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'handoffs'::regclass`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows >= 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("500 handoffs inserted, and the store's analysis never analyzed the table")
		}
		time.Sleep(100 * time.Millisecond)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`SET plan_cache_mode = force_generic_plan`, // as cached: planned once for any key
		// The statement PostgreSQL's referential integrity check runs (ri_triggers.c).
		`PREPARE ri_check(text, text) AS SELECT 1 FROM ONLY handoffs x WHERE org_id = $1 AND id = $2 FOR KEY SHARE OF x`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" } // EXPLAIN takes no parameters
	rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE ri_check(`+lit(f.Org.ID)+`, `+lit(f.Handoff.ID)+`)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Scan using handoffs_pkey") {
		t.Errorf("the foreign-key check is not planned on the primary key:\n%s", p)
	}
}

// TestAnalyzeAtStart: a process that wrote handoffs and stopped before its pass came leaves them
// never analyzed. The next start analyzes them at once, not a pass (15 s) later: until then a
// restarted replica read each step job's handoff through handoffs_org_device, walking the
// organization's entries, and drained overdue rungs slower (issue 12).
func TestAnalyzeAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	o := postgres.Options{URL: url, MaxConns: 5}
	first, err := postgres.Open(ctx, o, testdb.Discard) // migrates; its pass finds the tables empty
	if err == nil {
		err = first.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, url)
	// Nor may autovacuum, where it is on.
	if _, err := db.ExecContext(ctx, `ALTER TABLE handoffs SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	// Opened without migrating, a store runs no pass of its own, so nothing analyzes behind the writes.
	w, err := postgres.OpenExisting(ctx, o, testdb.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := storetest.NewFixture(t, w, "a")
	testdb.Copy(t, w, f.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{f.Org.ID, f.Handoff.ID}, 500,
		map[string]string{"id": testdb.Suffix("postgres", "id", false)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if analyzed(t, db, "handoffs") {
		t.Fatal("handoffs were analyzed before the restart")
	}

	testdb.OpenURL(t, url)
	const within = 10 * time.Second // under AnalyzeInterval, when the periodic pass would come
	for deadline := time.Now().Add(within); !analyzed(t, db, "handoffs"); {
		if time.Now().After(deadline) {
			t.Fatalf("handoffs, written and never analyzed, were not analyzed within %s of the start", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
