package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// system stands for the instance scope in TestRowLevelSecurity's count.
const system = "(system)"

// TestRowLevelSecurity checks the backstop on its own: raw SQL as the runtime role, with no org filter
// in the query, sees only the rows of the org the transaction is bound to.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	s := testdb.OpenURL(t, url)
	a := storetest.NewFixture(t, s, "a")
	b := storetest.NewFixture(t, s, "b")
	tokens := map[string][]byte{}
	for _, f := range []storetest.Fixture{a, b} {
		tokens[f.Org.ID] = []byte(f.Org.ID)
		err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			n := time.Now()
			_, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: f.Handoff.ID, Key: "k", Channel: "console", Target: f.User.ID, CreatedAt: n})
			return errors.Join(err,
				tx.SetContact(ctx, store.Contact{UserID: f.User.ID, Kind: "phone", Address: "+15550000001", CreatedAt: n}),
				tx.PutLadder(ctx, store.LadderVersion{Name: "default", Version: 1, Source: []byte("x"), CreatedBy: f.User.ID, CreatedAt: n}),
				tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tokens[f.Org.ID], HandoffID: f.Handoff.ID, UserID: f.User.ID,
					Channel: "sms", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}),
				tx.CreateCode(ctx, store.OneTimeCode{ID: f.Org.ID, Purpose: store.CodeReset, Email: f.User.Email, UserID: f.User.ID,
					Hash: []byte("code-" + f.Org.ID), CreatedAt: n, ExpiresAt: n.Add(time.Hour)})) // identity (issue 13)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var super, bypass bool
	if err := db.QueryRowContext(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("runtime role must not bypass RLS: superuser=%v bypassrls=%v", super, bypass)
	}

	count := func(setting, table string) (n int) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if setting == system {
			if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`); err != nil {
				t.Fatal(err)
			}
		} else if setting != "" {
			if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, setting); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range []string{"orgs", "users", "devices", "sessions", "handoffs", "ladders", "escalation_sends", "decision_tokens", "user_contacts", "one_time_codes"} {
		if n := count("", table); n != 0 {
			t.Errorf("%s: %d rows visible with no org bound, want 0", table, n)
		}
		if n := count(a.Org.ID, table); n != 1 {
			t.Errorf("%s: %d rows visible to org A, want 1", table, n)
		}
	}
	// The system scope resolves decision tokens, sends by their provider's reference and people with
	// their contacts (their org is not known yet), and nothing else of these.
	for table, want := range map[string]int{"decision_tokens": 2, "ladders": 0, "escalation_sends": 2, "user_contacts": 2, "one_time_codes": 2} {
		if n := count(system, table); n != want {
			t.Errorf("%s: %d rows visible to the system scope, want %d", table, n, want)
		}
	}
	sys, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Rollback()
	if _, err := sys.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`); err != nil {
		t.Fatal(err)
	}
	// What the system scope may read it may not change.
	for _, q := range []string{
		`UPDATE escalation_sends SET state = 'failed'`, `DELETE FROM escalation_sends`,
		`UPDATE user_contacts SET address = '+1'`, `DELETE FROM user_contacts`,
		`UPDATE one_time_codes SET used_at = now()`, `DELETE FROM one_time_codes`,
	} {
		res, err := sys.ExecContext(ctx, q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Fatalf("%q under the system scope changed %d rows", q, n)
		}
	}
	if _, err := sys.ExecContext(ctx, `INSERT INTO decision_tokens (org_id, hash, handoff_id, user_id, channel, created_at, expires_at)
		VALUES ($1, 'forged', $2, $3, 'sms', now(), now() + interval '1 hour')`, a.Org.ID, a.Handoff.ID, a.User.ID); err == nil {
		t.Fatal("the system scope minted a decision token")
	}
	// Writing a row for another org is refused by the policy's WITH CHECK.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, a.Org.ID); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE handoffs SET title = 'x' WHERE org_id = $1`,
		`UPDATE escalation_sends SET state = 'failed' WHERE org_id = $1`,
		`UPDATE decision_tokens SET used_at = now() WHERE org_id = $1`,
		`UPDATE one_time_codes SET used_at = now() WHERE org_id = $1`,
	} {
		res, err := tx.ExecContext(ctx, q, b.Org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Fatalf("%q under org A's scope changed %d of B's rows", q, n)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES ('evil', 'x', 1, now())`); err == nil {
		t.Fatal("inserting another org's row under org A's scope succeeded")
	}
	// A failed statement aborts the transaction, so each refused write gets its own.
	lt, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Rollback()
	if _, err := lt.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, a.Org.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := lt.ExecContext(ctx, `INSERT INTO ladders (org_id, name, version, source, created_by, created_at) VALUES ($1, 'evil', 1, 'x', 'x', now())`, b.Org.ID); err == nil {
		t.Fatal("inserting B's ladder under org A's scope succeeded")
	}
}
