package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestAuditHashesBecomeTiles: migration 0014 moves every log's stored hashes, one row each, into
// tiles of 256 hashes of every eighth level, in order, and drops the old table. Logs of several sizes
// (empty, one partial tile, past a full one with a level-1 tile) arrive hash for hash, each scoped to
// its own organization.
func TestAuditHashesBecomeTiles(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exec, closeDB, open := migratedBefore(t, d, "audit_tiles")
			at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			sizes := map[string]int64{uuid.NewString(): 0, uuid.NewString(): 3, uuid.NewString(): 600}
			hashesOf := map[string][]tlog.Hash{}
			tables := []string{"audit_leaves", "audit_hashes", "audit_heads"}
			if d == "postgres" { // an older Ony's rows of several organizations, written past row-level security
				for _, tbl := range tables {
					exec(`ALTER TABLE ` + tbl + ` NO FORCE ROW LEVEL SECURITY`)
				}
			}
			for org, n := range sizes {
				var hs memHashes
				for i := range n {
					leaf := fmt.Appendf(nil, "%s leaf %d", org, i)
					exec(`INSERT INTO audit_leaves (org_id, idx, data, created_at) VALUES (?, ?, ?, ?)`, org, i, leaf, at)
					x, err := tlog.StoredHashes(i, leaf, hs)
					if err != nil {
						t.Fatal(err)
					}
					hs = append(hs, x...)
				}
				for lo := 0; lo < len(hs); lo += 200 {
					q, args := `INSERT INTO audit_hashes (org_id, hidx, hash) VALUES `, []any{}
					for i := lo; i < min(lo+200, len(hs)); i++ {
						if i > lo {
							q += ", "
						}
						q += "(?, ?, ?)"
						args = append(args, org, i, hs[i][:])
					}
					exec(q, args...)
				}
				root, err := tlog.TreeHash(n, hs)
				if err != nil {
					t.Fatal(err)
				}
				exec(`INSERT INTO audit_heads (org_id, size, root, updated_at) VALUES (?, ?, ?, ?)`, org, n, root[:], at)
				hashesOf[org] = hs
			}
			if d == "postgres" {
				for _, tbl := range tables {
					exec(`ALTER TABLE ` + tbl + ` FORCE ROW LEVEL SECURITY`)
				}
			}
			closeDB()

			s := open()
			for org, n := range sizes {
				var want []store.AuditTile
				for level := 0; n>>(8*level) > 0; level++ {
					for pos := int64(0); pos < n>>(8*level); pos++ {
						if pos%256 == 0 {
							want = append(want, store.AuditTile{Level: level, Index: pos / 256})
						}
						h := hashesOf[org][tlog.StoredHashIndex(8*level, pos)]
						want[len(want)-1].Data = append(want[len(want)-1].Data, h[:]...)
					}
				}
				keys := []store.AuditTile{{Level: 0, Index: 0}, {Level: 0, Index: 1}, {Level: 0, Index: 2}, {Level: 0, Index: 3}, {Level: 1, Index: 0}, {Level: 2, Index: 0}}
				var got []store.AuditTile
				err := s.ReadOrg(ctx, org, func(tx store.OrgTx) (err error) { got, err = tx.AuditTiles(ctx, keys); return err })
				if err != nil {
					t.Fatal(err)
				}
				slices.SortFunc(got, func(a, b store.AuditTile) int {
					return int(a.Level-b.Level)*1_000_000 + int(a.Index-b.Index)
				})
				if len(got) != len(want) {
					t.Fatalf("log of %d leaves: %d tiles after the migration, want %d", n, len(got), len(want))
				}
				for k := range want {
					if got[k].Level != want[k].Level || got[k].Index != want[k].Index || string(got[k].Data) != string(want[k].Data) {
						t.Errorf("log of %d leaves: tile %d/%d (%d bytes) after the migration, want %d/%d (%d bytes)", n,
							got[k].Level, got[k].Index, len(got[k].Data), want[k].Level, want[k].Index, len(want[k].Data))
					}
				}
			}
		})
	}
}

// memHashes is an in-memory tlog.HashReader.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m[x]
	}
	return out, nil
}
