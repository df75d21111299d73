package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/migrations"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
)

// TestContactsMoveFromColumns: people's phone numbers and chat ids, which used to be columns of
// users, arrive in user_contacts when the database is migrated, verified (an operator set them).
func TestContactsMoveFromColumns(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exec, closeDB, open := migratedBefore(t, d, "contacts")
			org, ana, ben := uuid.NewString(), uuid.NewString(), uuid.NewString()
			created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			if d == "postgres" {
				exec(`SELECT set_config('ony.org_id', ?, false)`, org)
			}
			exec(`INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES (?, 'acme', 3600, ?)`, org, created)
			user := `INSERT INTO users (org_id, id, email, name, password_hash, role, created_at, phone, slack_id, telegram_id)
				VALUES (?, ?, ?, ?, 'x', 'member', ?, ?, ?, ?)`
			exec(user, org, ana, "ana@example.com", "Ana", created, "+15550100001", "U0ANA", "1001")
			exec(user, org, ben, "ben@example.com", "Ben", created, "", "", "1003")
			closeDB()

			s := open()
			err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
				us, err := tx.ListUsers(ctx)
				if err != nil {
					return err
				}
				got := map[string][]store.Contact{}
				for _, u := range us {
					got[u.Name] = u.Contacts
				}
				c := func(user, kind, addr string) store.Contact {
					return store.Contact{OrgID: org, UserID: user, Kind: kind, Address: addr, VerifiedAt: &created, CreatedAt: created}
				}
				want := map[string][]store.Contact{
					"Ana": {c(ana, "phone", "+15550100001"), c(ana, "slack", "U0ANA"), c(ana, "telegram", "1001")},
					"Ben": {c(ben, "telegram", "1003")},
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					return fmt.Errorf("contacts after migration:\n got %v\nwant %v", got, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// migratedBefore is a database of dialect d with the migrations before the one named next applied, as
// an older Ony left it: exec runs SQL on it ('?' placeholders), closeDB lets go of it, and open opens
// it with today's store, which migrates the rest.
func migratedBefore(t *testing.T, d, next string) (exec func(q string, args ...any), closeDB func(), open func() store.Store) {
	t.Helper()
	ctx := context.Background()
	var db *sql.DB
	var err error
	bind := func(q string) string { return q }
	switch d {
	case "sqlite":
		path := testdb.SQLitePath(t)
		db, err = sql.Open("sqlite", "file:"+path+"?_time_format=sqlite&_pragma=foreign_keys(1)")
		open = func() store.Store {
			s, err := sqlite.Open(ctx, path, testdb.Discard)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	case "postgres":
		url := testdb.PostgresURL(t)
		db, err = sql.Open("pgx", url)
		bind = func(q string) string {
			var b strings.Builder
			n := 0
			for _, r := range q {
				if r == '?' {
					n++
					fmt.Fprintf(&b, "$%d", n)
					continue
				}
				b.WriteRune(r)
			}
			return b.String()
		}
		open = func() store.Store { return testdb.OpenURL(t, url) }
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec = func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, bind(q), args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	ms, err := migrations.For(d)
	if err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE ony_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`)
	found := false
	for _, m := range ms {
		if found = m.Name == next; found {
			break
		}
		exec(m.SQL)
		exec(`INSERT INTO ony_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, "x")
	}
	if !found {
		t.Fatalf("no migration named %q", next)
	}
	return exec, func() { db.Close() }, open
}
