package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestAuditLeavesBecomeBundles: migration 0017 (SQLite 0016) moves every log's leaves, one row each,
// into bundles of store.AuditBundleWidth, in order, and drops the old table. Logs of several sizes
// (empty, one partial bundle, two full bundles and a partial one) arrive byte for byte, binary leaves
// included, each scoped to its own organization.
func TestAuditLeavesBecomeBundles(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exec, closeDB, open := migratedBefore(t, d, "audit_bundles")
			at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			sizes := map[string]int{uuid.NewString(): 0, uuid.NewString(): 3, uuid.NewString(): 2*store.AuditBundleWidth + 6}
			leaf := func(org string, i int) []byte {
				// Lengths vary across 256 and past it, so every byte of the length prefix is exercised.
				return append(fmt.Appendf(nil, "%s leaf %d ", org, i), bytes.Repeat([]byte{0, byte(i)}, 70*i)...)
			}
			if d == "postgres" { // an older Ony's rows of several organizations, written past row-level security
				exec(`ALTER TABLE audit_leaves NO FORCE ROW LEVEL SECURITY`)
			}
			for org, n := range sizes {
				for i := range n {
					exec(`INSERT INTO audit_leaves (org_id, idx, data, created_at) VALUES (?, ?, ?, ?)`, org, i, leaf(org, i), at)
				}
			}
			if d == "postgres" {
				exec(`ALTER TABLE audit_leaves FORCE ROW LEVEL SECURITY`)
			}
			closeDB()

			s := open()
			for org, n := range sizes {
				var got []store.AuditLeaf
				err := s.ReadOrg(ctx, org, func(tx store.OrgTx) (err error) { got, err = tx.AuditLeaves(ctx, 0, 1000); return err })
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != n {
					t.Fatalf("log of %d leaves: %d after the migration", n, len(got))
				}
				for i, l := range got {
					if l.Index != int64(i) || !bytes.Equal(l.Data, leaf(org, i)) {
						t.Fatalf("log of %d leaves: leaf %d is %d, %d bytes after the migration, want %d bytes", n, i, l.Index, len(l.Data), len(leaf(org, i)))
					}
				}
			}
			db := s.(interface{ DB() *sql.DB }).DB()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if d == "postgres" { // every organization's rows, past row-level security
				if _, err := tx.ExecContext(ctx, `SELECT set_config('ony.scope', 'system', true)`); err != nil {
					t.Fatal(err)
				}
			}
			var rows, leaves int
			if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0) FROM audit_bundles`).Scan(&rows, &leaves); err != nil {
				t.Fatal(err)
			}
			if rows != 1+3 || leaves != 3+2*store.AuditBundleWidth+6 {
				t.Fatalf("%d bundle rows counting %d leaves, want 4 counting %d", rows, leaves, 3+2*store.AuditBundleWidth+6)
			}
			if d == "postgres" {
				// Compressed in the row with lz4 or, on a server built without it, out of line as it is;
				// never the default, pglz.
				var storage, compression string
				if err := tx.QueryRowContext(ctx, `SELECT attstorage::text, attcompression::text FROM pg_attribute
					WHERE attrelid = 'audit_bundles'::regclass AND attname = 'data'`).Scan(&storage, &compression); err != nil {
					t.Fatal(err)
				}
				if storage+"/"+compression != "m/l" && storage+"/"+compression != "e/" {
					t.Fatalf("audit_bundles.data has storage %q, compression %q; want m/l (lz4 in the row) or e/ (out of line)", storage, compression)
				}
				t.Logf("audit_bundles.data: storage %s, compression %q", storage, compression)
			}
		})
	}
}
