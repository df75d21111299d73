package audit

import (
	"crypto/rand"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memReader serves tlog from hashes held in memory.
type memReader []tlog.Hash

func (m memReader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

// TestFrontierIsTlog: the frontier adds exactly the stored hashes tlog.StoredHashes computes, folds to
// tlog.TreeHash's root at every size, and frontierIndexes name the stored hashes it holds.
func TestFrontierIsTlog(t *testing.T) {
	var f frontier
	var stored memReader
	var buf []byte
	for n := int64(0); n < 1100; n++ {
		data := make([]byte, 1+n%97)
		rand.Read(data)
		want, err := tlog.StoredHashes(n, data, stored)
		if err != nil {
			t.Fatal(err)
		}
		got := f.add(leafHash(data, &buf), nil)
		if len(got) != len(want) {
			t.Fatalf("leaf %d: %d stored hashes, tlog %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("leaf %d: stored hash %d differs from tlog's", n, i)
			}
		}
		stored = append(stored, want...)
		root, err := tlog.TreeHash(n+1, stored)
		if err != nil {
			t.Fatal(err)
		}
		if f.root() != root {
			t.Fatalf("root at size %d differs from tlog's", n+1)
		}
		for i, x := range frontierIndexes(n + 1) {
			if stored[x] != f.h[i] {
				t.Fatalf("size %d: frontier %d is not stored hash %d", n+1, i, x)
			}
		}
	}
	if (&frontier{}).root() != emptyRoot {
		t.Fatal("the empty frontier's root is not the empty tree's")
	}
}
