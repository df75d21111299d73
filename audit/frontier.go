package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// frontier is the right edge of a tree of size leaves: the hashes of the complete subtrees that make
// it up, one per set bit of size, largest first. It is all that adding a leaf needs (RFC 6962 merges
// only along the right edge), and folding it from the right gives the root.
type frontier struct {
	size int64
	h    []tlog.Hash
}

// add appends leaf size's stored hashes to out, exactly those tlog.StoredHashes returns for it: the
// leaf hash, then one interior hash per complete subtree the leaf closes.
func (f *frontier) add(leaf tlog.Hash, out []tlog.Hash) []tlog.Hash {
	h := leaf
	out = append(out, h)
	for n := f.size; n&1 == 1; n >>= 1 {
		left := f.h[len(f.h)-1]
		f.h = f.h[:len(f.h)-1]
		h = nodeHash(left, h)
		out = append(out, h)
	}
	f.h = append(f.h, h)
	f.size++
	return out
}

// root is the tree's RFC 6962 root.
func (f *frontier) root() tlog.Hash {
	if len(f.h) == 0 {
		return emptyRoot
	}
	r := f.h[len(f.h)-1]
	for i := len(f.h) - 2; i >= 0; i-- {
		r = nodeHash(f.h[i], r)
	}
	return r
}

func (f *frontier) encode() []byte {
	out := make([]byte, 0, len(f.h)*tlog.HashSize)
	for _, h := range f.h {
		out = append(out, h[:]...)
	}
	return out
}

// frontierIndexes are the stored-hash indexes of the frontier of a tree of size n, largest first.
func frontierIndexes(n int64) []int64 {
	var idx []int64
	for l := 63; l >= 0; l-- {
		if n&(1<<l) != 0 {
			idx = append(idx, tlog.StoredHashIndex(l, n>>l-1))
		}
	}
	return idx
}

// loadFrontier decodes the head's frontier, or rebuilds it from stored hashes for a head written
// before frontiers were kept. Either way it must fold to the head's root.
func loadFrontier(ctx context.Context, tx store.OrgTx, head store.AuditHead) (frontier, error) {
	f := frontier{size: head.Size}
	want := bits.OnesCount64(uint64(head.Size))
	if len(head.Frontier) != 0 {
		if len(head.Frontier) != want*tlog.HashSize {
			return f, fmt.Errorf("audit: head frontier has %d bytes, want %d", len(head.Frontier), want*tlog.HashSize)
		}
		f.h = make([]tlog.Hash, want, want+1)
		for i := range f.h {
			copy(f.h[i][:], head.Frontier[i*tlog.HashSize:])
		}
	} else if want > 0 {
		hs, err := readHashes(ctx, tx, frontierIndexes(head.Size))
		if err != nil {
			return f, fmt.Errorf("audit: rebuild frontier: %w", err)
		}
		f.h = append(make([]tlog.Hash, 0, want+1), hs...)
	}
	if r := f.root(); string(r[:]) != string(head.Root) {
		return f, fmt.Errorf("audit: the head's frontier does not fold to its root at size %d", head.Size)
	}
	return f, nil
}

// leafHash is tlog.RecordHash without its allocations: SHA-256(0x00 || data), through buf.
func leafHash(data []byte, buf *[]byte) tlog.Hash {
	b := append((*buf)[:0], 0)
	b = append(b, data...)
	*buf = b
	return sha256.Sum256(b)
}

// nodeHash is tlog.NodeHash: SHA-256(0x01 || left || right).
func nodeHash(left, right tlog.Hash) tlog.Hash {
	var b [1 + 2*tlog.HashSize]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+tlog.HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// tileWriter gathers what a batch of leaves adds to the hash tiles: of each leaf's stored hashes, those
// of every AuditTileHeight-th level, appended to the tile of that level they fall in.
type tileWriter struct {
	tiles []store.AuditTile
	cur   [64 / store.AuditTileHeight]int // per tile level, 1 + the position in tiles of its current tile
}

// add takes the stored hashes of leaf i, as frontier.add returns them (level j at out[j]).
func (w *tileWriter) add(i int64, out []tlog.Hash) {
	for j := 0; j < len(out); j += store.AuditTileHeight {
		level, n := j/store.AuditTileHeight, i>>j
		idx, pos := n/store.AuditTileWidth, int(n%store.AuditTileWidth)
		k := w.cur[level] - 1
		if k < 0 || w.tiles[k].Index != idx {
			w.tiles = append(w.tiles, store.AuditTile{Level: level, Index: idx, Start: pos})
			k = len(w.tiles) - 1
			w.cur[level] = k + 1
		}
		w.tiles[k].Data = append(w.tiles[k].Data, out[j][:]...)
	}
}
