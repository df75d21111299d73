package audit_test

import (
	"strings"
	"testing"

	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
)

// TestAppendOnlyForRuntimeRole attempts every rewrite of history through the store's own connection — the
// runtime role, no superuser — with the rows visible to it, and requires the database to refuse each.
func TestAppendOnlyForRuntimeRole(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendN(t, s, l, org, 0, 5)
		checkpoint(t, s, l, org)
		before := verifyOK(t, s, l, org, 5)

		attempts := []string{
			`UPDATE audit_bundles SET data = ? WHERE org_id = ?`,
			`UPDATE audit_bundles SET idx = idx + 100 WHERE org_id = ?`,
			`UPDATE audit_bundles SET n = n + 1 WHERE org_id = ?`,
			`UPDATE audit_bundles SET org_id = 'elsewhere' WHERE org_id = ?`,
			`DELETE FROM audit_bundles WHERE org_id = ?`,
			`UPDATE audit_tiles SET data = ? WHERE org_id = ?`,
			`UPDATE audit_tiles SET idx = idx + 100 WHERE org_id = ?`,
			`UPDATE audit_tiles SET level = 1 WHERE org_id = ?`,
			`UPDATE audit_tiles SET org_id = 'elsewhere' WHERE org_id = ?`,
			`DELETE FROM audit_tiles WHERE org_id = ?`,
			`UPDATE audit_checkpoints SET note = ? WHERE org_id = ?`,
			`UPDATE audit_checkpoints SET size = size + 1 WHERE org_id = ?`,
			`DELETE FROM audit_checkpoints WHERE org_id = ?`,
			`UPDATE audit_heads SET size = size - 1 WHERE org_id = ?`,
			`UPDATE audit_heads SET size = 0, root = ? WHERE org_id = ?`,
			`UPDATE audit_heads SET org_id = 'elsewhere' WHERE org_id = ?`,
			`DELETE FROM audit_heads WHERE org_id = ?`,
		}
		if dialect == "postgres" {
			attempts = append(attempts, `TRUNCATE audit_bundles`, `TRUNCATE audit_tiles`, `TRUNCATE audit_checkpoints`, `TRUNCATE audit_heads`)
		}
		for _, q := range attempts {
			var args []any
			if strings.Contains(q, "= ? WHERE") {
				args = append(args, make([]byte, 32))
			}
			if strings.Contains(q, "org_id = ?") {
				args = append(args, org)
			}
			n, err := runtimeExec(t, s, org, q, args...)
			if err == nil {
				t.Errorf("runtime role: %s succeeded (%d rows)", q, n)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, "append-only") && !strings.Contains(msg, "permission denied") {
				t.Errorf("runtime role: %s failed for another reason than the guard: %v", q, err)
			}
		}
		// A tile or bundle row may only grow with what it held as its prefix: a longer value that changes
		// a hash, or one as long with its last hash changed, is refused; so is a bundle that grows without
		// counting the leaf it gained, or that gains one in front.
		longer := make([]byte, 6*32) // the five leaves' hashes and one more, all zero
		sameLength := `UPDATE audit_tiles SET data = substr(data, 1, length(data) - 32) || ? WHERE org_id = ?`
		grown := `UPDATE audit_bundles SET data = data || ? WHERE org_id = ?`
		inFront := `UPDATE audit_bundles SET data = ? || data, n = n + 1 WHERE org_id = ?`
		if dialect == "sqlite" {
			sameLength = `UPDATE audit_tiles SET data = CAST(substr(data, 1, length(data) - 32) || ? AS BLOB) WHERE org_id = ?`
			grown = `UPDATE audit_bundles SET data = CAST(data || ? AS BLOB) WHERE org_id = ?`
			inFront = `UPDATE audit_bundles SET data = CAST(? || data AS BLOB), n = n + 1 WHERE org_id = ?`
		}
		leaf := store.AppendBundleLeaf(nil, []byte(`{"v":1}`))
		for _, c := range []struct {
			q    string
			args []any
		}{
			{`UPDATE audit_tiles SET data = ? WHERE org_id = ?`, []any{longer, org}},
			{sameLength, []any{make([]byte, 32), org}},
			{grown, []any{leaf, org}},
			{inFront, []any{leaf, org}},
		} {
			if n, err := runtimeExec(t, s, org, c.q, c.args...); err == nil {
				t.Errorf("runtime role: %s succeeded (%d rows)", c.q, n)
			} else if msg := err.Error(); !strings.Contains(msg, "append-only") {
				t.Errorf("runtime role: %s failed for another reason than the guard: %v", c.q, err)
			}
		}
		if dialect == "postgres" {
			for _, p := range []struct {
				table, priv string
			}{
				{"audit_bundles", "DELETE"}, {"audit_bundles", "TRUNCATE"},
				{"audit_tiles", "DELETE"}, {"audit_tiles", "TRUNCATE"},
				{"audit_checkpoints", "UPDATE"}, {"audit_checkpoints", "DELETE"}, {"audit_checkpoints", "TRUNCATE"},
				{"audit_heads", "DELETE"}, {"audit_heads", "TRUNCATE"},
			} {
				var has bool
				q := `SELECT has_table_privilege(current_user, $1, $2)`
				if err := s.DB().QueryRowContext(ctx, q, p.table, p.priv).Scan(&has); err != nil {
					t.Fatal(err)
				}
				if has {
					t.Errorf("the runtime role holds %s on %s", p.priv, p.table)
				}
			}
			var super, bypass bool
			if err := s.DB().QueryRowContext(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
				t.Fatal(err)
			}
			if super || bypass {
				t.Fatalf("the store connects as a privileged role: superuser=%v bypassrls=%v", super, bypass)
			}
		}
		after := verifyOK(t, s, l, org, 5)
		if after.Root != before.Root || after.CheckpointSize != 5 {
			t.Fatalf("the log changed: %+v then %+v", before, after)
		}
		// Appending still works after all the refusals.
		appendN(t, s, l, org, 5, 1)
		verifyOK(t, s, l, org, 6)
	})
}

// runtimeExec runs q in its own transaction on the store's connection pool, scoped to org as the store
// scopes its own transactions (so row-level security shows the rows), and rolls back.
func runtimeExec(t *testing.T, s *sqlstore.Store, org, q string, args ...any) (int64, error) {
	t.Helper()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if s.Dialect() == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, true)`, org); err != nil {
			t.Fatal(err)
		}
		q = (&rawDB{dialect: "postgres"}).rebind(q)
		// Make sure the rows are really visible, so a refusal is the guard's and not an empty match.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_bundles`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("runtime role sees %d leaves (%v)", n, err)
		}
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, nil
}
