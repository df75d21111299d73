package sqlstore_test

import (
	"context"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/sqlstore"
)

// TestSchemaCurrent: a start skips the migration lock only when every part of the schema this binary
// makes is there; each missing part sends Migrate down the locked path, which puts it back.
func TestSchemaCurrent(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := testdb.Open(t, d)
			db := sqlstore.DB(s)
			exec := func(q string) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if !s.SchemaCurrent(ctx) {
				t.Fatal("a migrated database is not current")
			}

			exec(`DROP INDEX ony_river_job_scheduled_at`)
			if s.SchemaCurrent(ctx) {
				t.Fatal("current without the job index")
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if !s.SchemaCurrent(ctx) {
				t.Fatal("Migrate did not make the job index again")
			}

			// A version row moved out of the way and back: each of the two logs is checked.
			for _, table := range []string{"ony_schema_migrations", "river_migration"} {
				exec(`CREATE TABLE moved AS SELECT * FROM ` + table + ` WHERE version = (SELECT max(version) FROM ` + table + `)`)
				exec(`DELETE FROM ` + table + ` WHERE version = (SELECT max(version) FROM moved)`)
				if s.SchemaCurrent(ctx) {
					t.Fatalf("current with the last version of %s missing", table)
				}
				exec(`INSERT INTO ` + table + ` SELECT * FROM moved`)
				exec(`DROP TABLE moved`)
				if !s.SchemaCurrent(ctx) {
					t.Fatalf("not current with %s's rows back", table)
				}
			}

			exec(`DROP TABLE ony_schema_migrations`)
			if s.SchemaCurrent(ctx) {
				t.Fatal("current without the migrations table")
			}
		})
	}
}
