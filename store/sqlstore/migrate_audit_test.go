package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/store"
)

// TestAuditLogMovesWithoutRowid: SQLite's migration 0012 rebuilds the audit leaves and hashes as
// WITHOUT ROWID tables. A log an older Ony wrote arrives whole, byte for byte, and the rebuilt tables
// still refuse to be changed or deleted from outside erasure. (Migration 0014 then moves the hashes
// into tiles, TestAuditHashesBecomeTiles, and 0016 the leaves into bundles, TestAuditLeavesBecomeBundles.)
func TestAuditLogMovesWithoutRowid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exec, closeDB, open := migratedBefore(t, "sqlite", "audit_without_rowid")
	org, other := uuid.NewString(), uuid.NewString()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	const leaves = 300
	for _, o := range []string{org, other} {
		for i := range leaves {
			exec(`INSERT INTO audit_leaves (org_id, idx, data, created_at) VALUES (?, ?, ?, ?)`, o, i, []byte(fmt.Sprintf("%s leaf %d", o, i)), at)
		}
		for h := range 2 * leaves {
			exec(`INSERT INTO audit_hashes (org_id, hidx, hash) VALUES (?, ?, ?)`, o, h, bytes.Repeat([]byte{byte(h)}, 32))
		}
	}
	closeDB()

	s := open()
	err := s.ReadOrg(ctx, org, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 2*leaves)
		if err != nil {
			return err
		}
		if len(ls) != leaves {
			return fmt.Errorf("%d leaves after the migration, want %d", len(ls), leaves)
		}
		for i, l := range ls {
			if want := fmt.Sprintf("%s leaf %d", org, i); l.Index != int64(i) || string(l.Data) != want {
				return fmt.Errorf("leaf %d after the migration: %d %q, want %q", i, l.Index, l.Data, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db := s.(interface{ DB() *sql.DB }).DB()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_bundles`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("audit_bundles: %d rows (%v)", n, err)
	}
	for _, table := range []string{"audit_bundles", "audit_tiles"} {
		if err := db.QueryRowContext(ctx, `SELECT count(rowid) FROM `+table).Scan(&n); err == nil {
			t.Errorf("%s has rowids after the migrations", table)
		}
	}
	for _, q := range []string{
		`UPDATE audit_bundles SET data = x'00' WHERE org_id = ? AND idx = 1`,
		`DELETE FROM audit_bundles WHERE org_id = ?`,
	} {
		if _, err := db.ExecContext(ctx, q, org); err == nil {
			t.Errorf("%s: allowed after the migration", q)
		}
	}
}
