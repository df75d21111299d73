package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
)

// OpenExisting creates nothing: an empty schema is ErrNoSchema and stays empty, a schema behind the
// binary is ErrSchemaOld and is not migrated, and a current one opens.
func TestOpenExisting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	super, err := sql.Open("pgx", testdb.SuperuserURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	tables := func() (n int) {
		t.Helper()
		if err := super.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := postgres.OpenExisting(ctx, postgres.Options{URL: url}, testdb.Discard); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("an empty schema: %v, want ErrNoSchema", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("OpenExisting created %d tables", n)
	}

	testdb.OpenURL(t, url) // migrates
	s, err := postgres.OpenExisting(ctx, postgres.Options{URL: url}, testdb.Discard)
	if err != nil {
		t.Fatalf("a migrated schema: %v", err)
	}
	s.Close()

	var latest int
	if err := super.QueryRow(`SELECT max(version) FROM ony_schema_migrations`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(`DELETE FROM ony_schema_migrations WHERE version = $1`, latest); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.OpenExisting(ctx, postgres.Options{URL: url}, testdb.Discard); !errors.Is(err, store.ErrSchemaOld) {
		t.Fatalf("a schema one migration behind: %v, want ErrSchemaOld", err)
	}
	var now int
	if err := super.QueryRow(`SELECT max(version) FROM ony_schema_migrations`).Scan(&now); err != nil || now != latest-1 {
		t.Fatalf("OpenExisting migrated: version %d (%v), want %d", now, err, latest-1)
	}
}

func TestWhere(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"postgres://ony:CANARY@db.internal:5433/ony?sslmode=disable&search_path=tenant": "db.internal:5433/ony (search_path tenant)",
		"postgres://ony@127.0.0.1/prod": "127.0.0.1:5432/prod",
		"::not a url":                   "",
	} {
		if got := postgres.Where(url); got != want {
			t.Errorf("Where(%q) = %q, want %q", url, got, want)
		}
	}
}
