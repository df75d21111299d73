package audit_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// flipSizes are the tree sizes whose proofs get every single bit flipped.
var flipSizes = []int64{1, 2, 3, 7, 8, 64, 100}

// TestProofs checks every inclusion proof and every consistency proof (a dense sample of the pairs
// under the race detector, see denseSample) of a log grown to 100 leaves (SQLite) or 33 (PostgreSQL) against the roots of the signed checkpoints taken at each size, with
// tlog and with transparency-dev/merkle's independent verifier, and that any one flipped bit breaks them.
func TestProofs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dialect string
		n       int64
	}{{"sqlite", 100}, {"postgres", 33}} {
		t.Run(tc.dialect, func(t *testing.T) {
			t.Parallel()
			testProofs(t, tc.dialect, tc.n)
		})
	}
}

func testProofs(t *testing.T, dialect string, n int64) {
	s := testdb.Open(t, dialect)
	l := newLog(t)
	org := orgID(t)

	// roots[k] is the root of the tree of size k, from the signed checkpoint taken at that size.
	roots := make([]tlog.Hash, n+1)
	roots[0], _ = tlog.TreeHash(0, nil)
	for k := int64(1); k <= n; k++ {
		appendN(t, s, l, org, int(k-1), 1)
		_, c := checkpoint(t, s, l, org)
		if c.Size != k || c.Origin != l.Origin(org) {
			t.Fatalf("checkpoint after %d appends: %+v", k, c)
		}
		if h := head(t, s, org); h.Size != k || !slices.Equal(h.Root, c.Root[:]) {
			t.Fatalf("head at %d (%d, %x) differs from checkpoint root %x", k, h.Size, h.Root, c.Root)
		}
		roots[k] = c.Root
	}
	data := leaves(t, s, org)
	if int64(len(data)) != n {
		t.Fatalf("%d leaves stored, want %d", len(data), n)
	}

	for size := int64(1); size <= n; size++ {
		flip := slices.Contains(flipSizes, size)
		for idx := int64(0); idx < size; idx++ {
			p, err := l.ProveInclusion(ctx, s, org, idx, size)
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", idx, size, err)
			}
			if p.Index != idx || p.Size != size {
				t.Fatalf("ProveInclusion(%d, %d) answered for (%d, %d)", idx, size, p.Index, p.Size)
			}
			if want := tlog.RecordHash(data[idx].Data); p.LeafHash != want {
				t.Fatalf("leaf hash of %d: got %x, want %x", idx, p.LeafHash, want)
			}
			if err := tlog.CheckRecord(p.Proof, size, roots[size], idx, p.LeafHash); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", idx, size, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(idx), uint64(size), p.LeafHash[:], raw(p.Proof), roots[size][:]); err != nil {
				t.Fatalf("inclusion of %d in %d, independent verifier: %v", idx, size, err)
			}
			if size > 1 {
				other := (idx + 1) % size
				if tlog.CheckRecord(p.Proof, size, roots[size], other, p.LeafHash) == nil {
					t.Fatalf("inclusion proof of %d in %d also proves index %d", idx, size, other)
				}
			}
			if flip {
				flipEveryBit(t, p.Proof, "inclusion proof", func() error {
					return tlog.CheckRecord(p.Proof, size, roots[size], idx, p.LeafHash)
				})
				leaf := []tlog.Hash{p.LeafHash}
				flipEveryBit(t, leaf, "leaf hash", func() error {
					return tlog.CheckRecord(p.Proof, size, roots[size], idx, leaf[0])
				})
			}
		}
	}

	for newSize := int64(1); newSize <= n; newSize++ {
		flip := slices.Contains(flipSizes, newSize)
		for old := int64(1); old <= newSize; old++ {
			if !flip && !denseSample(old, newSize) {
				continue
			}
			p, err := l.ProveConsistency(ctx, s, org, old, newSize)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", old, newSize, err)
			}
			if p.Old != old || p.New != newSize {
				t.Fatalf("ProveConsistency(%d, %d) answered for (%d, %d)", old, newSize, p.Old, p.New)
			}
			if err := tlog.CheckTree(p.Proof, newSize, roots[newSize], old, roots[old]); err != nil {
				t.Fatalf("consistency %d -> %d: %v", old, newSize, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(newSize), raw(p.Proof), roots[old][:], roots[newSize][:]); err != nil {
				t.Fatalf("consistency %d -> %d, independent verifier: %v", old, newSize, err)
			}
			if old == newSize {
				continue
			}
			// A proof between the right sizes must not vouch for another log's old root.
			if tlog.CheckTree(p.Proof, newSize, roots[newSize], old, roots[old-1]) == nil {
				t.Fatalf("consistency %d -> %d accepted the root of size %d as the old root", old, newSize, old-1)
			}
			if flip {
				flipEveryBit(t, p.Proof, "consistency proof", func() error {
					return tlog.CheckTree(p.Proof, newSize, roots[newSize], old, roots[old])
				})
			}
		}
	}

	// Out-of-range requests are refused, and size 0 means the current size.
	for _, c := range [][2]int64{{-1, n}, {n, n}, {0, n + 1}, {n + 5, 0}} {
		if _, err := l.ProveInclusion(ctx, s, org, c[0], c[1]); !errors.Is(err, audit.ErrRange) {
			t.Errorf("ProveInclusion(%d, %d): want ErrRange, got %v", c[0], c[1], err)
		}
	}
	for _, c := range [][2]int64{{0, n}, {-1, n}, {n, n - 1}, {1, n + 1}, {n + 1, 0}} {
		if _, err := l.ProveConsistency(ctx, s, org, c[0], c[1]); !errors.Is(err, audit.ErrRange) {
			t.Errorf("ProveConsistency(%d, %d): want ErrRange, got %v", c[0], c[1], err)
		}
	}
	if p, err := l.ProveInclusion(ctx, s, org, 3, 0); err != nil || p.Size != n {
		t.Errorf("ProveInclusion(3, 0): want the current size %d, got %+v, %v", n, p, err)
	}
	if p, err := l.ProveConsistency(ctx, s, org, 1, 0); err != nil || p.New != n {
		t.Errorf("ProveConsistency(1, 0): want the current size %d, got %+v, %v", n, p, err)
	}
	// A log never written to has nothing to prove.
	if _, err := l.ProveInclusion(ctx, s, "no-such-org", 0, 0); err == nil {
		t.Error("ProveInclusion on an empty log succeeded")
	}
	if _, err := l.ProveConsistency(ctx, s, "no-such-org", 1, 1); err == nil {
		t.Error("ProveConsistency on an empty log succeeded")
	}
	var ids []string
	if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditLogIDs(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, "no-such-org") {
		t.Error("reading proofs of an empty log created a log head for it")
	}
}

// denseSample picks the consistency pairs checked under the race detector: every pair up to 48 leaves
// and for the bit-flipped sizes, then the edges, the powers of two and their neighbours, the midpoint and
// every seventh size. Without the race detector every pair is checked.
func denseSample(old, newSize int64) bool {
	if !raceEnabled || newSize <= 48 || old <= 3 || newSize-old <= 2 || old == newSize/2 || old%7 == 0 {
		return true
	}
	for p := int64(4); p <= newSize; p *= 2 {
		if old >= p-1 && old <= p+1 {
			return true
		}
	}
	return false
}

// flipEveryBit flips each bit of each hash in hs in turn and requires check to fail, restoring the bit after.
func flipEveryBit(t *testing.T, hs []tlog.Hash, what string, check func() error) {
	t.Helper()
	for i := range hs {
		for bit := 0; bit < 8*tlog.HashSize; bit++ {
			hs[i][bit/8] ^= 1 << (bit % 8)
			err := check()
			hs[i][bit/8] ^= 1 << (bit % 8)
			if err == nil {
				t.Fatalf("%s still verifies with bit %d of hash %d flipped", what, bit, i)
			}
		}
	}
	if err := check(); err != nil {
		t.Fatalf("%s no longer verifies after restoring every bit: %v", what, err)
	}
}

func raw(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestProofsAcrossTiles: on a log past four full tiles (1,100 leaves), whose proofs need hashes of the
// level-8 tile and of the levels between those the tiles hold, inclusion and consistency proofs at
// sizes around tile edges check against roots recomputed from the leaves; a head without a frontier is
// rebuilt from the tiles; and a changed level-8 hash is found by Verify at the leaf that completed it.
func TestProofsAcrossTiles(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		const n = 1100
		s, r := openTamperable(t, dialect)
		l := newLog(t)
		org := orgID(t)
		buildLog(t, s, l, org, n)
		var hs memHashes
		for i, lf := range leaves(t, s, org) {
			x, err := tlog.StoredHashes(int64(i), lf.Data, hs)
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, x...)
		}
		root := func(size int64) []byte {
			h, err := tlog.TreeHash(size, hs)
			if err != nil {
				t.Fatal(err)
			}
			return h[:]
		}
		sizes := []int64{1, 255, 256, 257, 511, 512, 513, 768, 1024, 1025, n}
		for _, size := range sizes {
			for _, idx := range []int64{0, 1, 254, 255, 256, 300, 511, 512, 767, 1023, 1024, size - 1} {
				if idx >= size {
					continue
				}
				p, err := l.ProveInclusion(ctx, s, org, idx, size)
				if err != nil {
					t.Fatalf("ProveInclusion(%d, %d): %v", idx, size, err)
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(idx), uint64(size), p.LeafHash[:], raw(p.Proof), root(size)); err != nil {
					t.Fatalf("inclusion of %d in %d: %v", idx, size, err)
				}
			}
			for _, old := range sizes {
				if old > size {
					continue
				}
				p, err := l.ProveConsistency(ctx, s, org, old, size)
				if err != nil {
					t.Fatalf("ProveConsistency(%d, %d): %v", old, size, err)
				}
				if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(size), raw(p.Proof), root(old), root(size)); err != nil {
					t.Fatalf("consistency %d -> %d: %v", old, size, err)
				}
			}
		}

		// A head from before frontiers were kept: the next batch rebuilds it from the tiles.
		r.scope(t, org)
		if k := r.exec(t, `UPDATE audit_heads SET frontier = ? WHERE org_id = ?`, []byte{}, org); k != 1 {
			t.Fatalf("updated %d heads", k)
		}
		appendN(t, s, l, org, n, 3)
		checkpoint(t, s, l, org)
		verifyOK(t, s, l, org, n+3)

		// The level-8 hash over leaves 512..767 is the third in the level-1 tile; leaf 767 completed it.
		var data []byte
		if err := r.conn.QueryRowContext(ctx, r.rebind(`SELECT data FROM audit_tiles WHERE org_id = ? AND level = 1 AND idx = 0`), org).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if len(data) != 4*tlog.HashSize {
			t.Fatalf("the level-1 tile holds %d bytes, want 4 hashes", len(data))
		}
		data[2*tlog.HashSize] ^= 1
		r.exec(t, `UPDATE audit_tiles SET data = ? WHERE org_id = ? AND level = 1 AND idx = 0`, data, org)
		rep, err := l.Verify(ctx, s, org)
		if err != nil || rep.OK() || rep.BadIndex != 767 {
			t.Fatalf("a changed level-8 hash: %+v, %v; want bad index 767", rep, err)
		}
	})
}
