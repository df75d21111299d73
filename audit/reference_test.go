package audit

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// TestRootsMatchReference grows the tree Verify and VerifyExport recompute (tlog.StoredHashes and
// TreeHash) leaf by leaf to 4200 leaves (past 4096) and compares the root at every size with an independent
// RFC 6962 implementation, transparency-dev/merkle's compact range.
func TestRootsMatchReference(t *testing.T) {
	t.Parallel()
	const n = 4200
	h := rfc6962.DefaultHasher
	if !bytes.Equal(emptyRoot[:], h.EmptyRoot()) {
		t.Fatalf("empty root %x, reference %x", emptyRoot, h.EmptyRoot())
	}
	var tr tree
	rf := compact.RangeFactory{Hash: h.HashChildren}
	cr := rf.NewEmptyRange(0)
	for i := int64(0); i < n; i++ {
		data := leafData(i)
		hs, err := tr.add(i, data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hs[0][:], h.HashLeaf(data)) {
			t.Fatalf("leaf hash %d: %x, reference %x", i, hs[0], h.HashLeaf(data))
		}
		if err := cr.Append(h.HashLeaf(data), nil); err != nil {
			t.Fatal(err)
		}
		got, err := tr.root(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		want, err := cr.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:], want) {
			t.Fatalf("root at size %d: %x, reference %x", i+1, got, want)
		}
	}
	// Roots of earlier sizes stay reachable from the grown tree, as checkpoint checks need.
	for _, size := range []int64{1, 2, 3, 1023, 1024, 1025, 2047, 4095, 4096, 4097, 4199} {
		ref := rf.NewEmptyRange(0)
		for i := int64(0); i < size; i++ {
			_ = ref.Append(h.HashLeaf(leafData(i)), nil)
		}
		want, _ := ref.GetRootHash(nil)
		got, err := tr.root(size)
		if err != nil || !bytes.Equal(got[:], want) {
			t.Fatalf("root of size %d from a tree of %d: %x (%v), reference %x", size, n, got, err, want)
		}
	}
}

// TestProofsMatchReference compares tlog's inclusion and consistency proofs, as ProveInclusion and
// ProveConsistency return them, with transparency-dev/merkle's reference tree, hash for hash.
func TestProofsMatchReference(t *testing.T) {
	t.Parallel()
	const n = 130
	var tr tree
	ref := testonly.New(rfc6962.DefaultHasher)
	for i := int64(0); i < n; i++ {
		if _, err := tr.add(i, leafData(i)); err != nil {
			t.Fatal(err)
		}
		ref.AppendData(leafData(i))
	}
	for size := int64(1); size <= n; size++ {
		for idx := int64(0); idx < size; idx++ {
			got, err := tlog.ProveRecord(size, idx, tr.hashes)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.InclusionProof(uint64(idx), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if !sameProof(got, want) {
				t.Fatalf("inclusion proof %d in %d differs from the reference", idx, size)
			}
		}
		for old := int64(1); old <= size; old++ {
			got, err := tlog.ProveTree(size, old, tr.hashes)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.ConsistencyProof(uint64(old), uint64(size))
			if err != nil {
				t.Fatal(err)
			}
			if !sameProof(got, want) {
				t.Fatalf("consistency proof %d -> %d differs from the reference", old, size)
			}
		}
	}
}

func sameProof(got []tlog.Hash, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i][:], want[i]) {
			return false
		}
	}
	return true
}

func leafData(i int64) []byte {
	// Vary the length too, so no two leaves share a prefix pattern.
	return fmt.Appendf(nil, `{"v":1,"leaf":%d,"pad":%q}`, i, bytes.Repeat([]byte{'x'}, int(i%17)))
}
