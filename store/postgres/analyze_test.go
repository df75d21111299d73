package postgres_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/storetest"
)

// TestAnalyzeFollowsGrowth: a new installation's tables are empty when migrations finish. The
// foreign-key check behind every send row is a key lookup on handoffs, and PostgreSQL caches its plan
// per connection; planned on a table analyzed empty, it became a scan of the whole table and stayed
// one as the table grew (issue 12: creates slowed with every handoff on a fresh install). So tables
// are not analyzed empty, and once one has grown the store's pass analyzes it, after which the check
// is planned on the primary key.
func TestAnalyzeFollowsGrowth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url) // migrates, then analyzes what needs it

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	analyzed := func() (handoffs, migrations bool) {
		t.Helper()
		err := db.QueryRowContext(ctx, `SELECT
			(SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'handoffs'::regclass),
			(SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'ony_schema_migrations'::regclass)`).Scan(&handoffs, &migrations)
		if err != nil {
			t.Fatal(err)
		}
		return handoffs, migrations
	}
	if h, m := analyzed(); h || !m {
		t.Fatalf("after migrating: handoffs analyzed %v (want false: it was empty), ony_schema_migrations analyzed %v (want true)", h, m)
	}

	f := storetest.NewFixture(t, s, "a")
	testdb.Copy(t, s, f.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{f.Org.ID, f.Handoff.ID}, 500,
		map[string]string{"id": testdb.Suffix("postgres", "id", false)})
	// A backend reports its row counts to the statistics views within a second or so of its commit.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		if h, _ := analyzed(); h {
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
