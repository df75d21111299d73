package store

import (
	"encoding/binary"
	"errors"
)

// AuditBundleWidth is how many consecutive leaves one stored bundle holds: bundle k holds leaves
// k·AuditBundleWidth onwards. Verification reads a log a bundle to a row instead of a leaf to a row,
// and the sequencer rewrites at most one partial bundle per batch, so the width weighs the one against
// the other (issue 12: a row costs far more to read than its bytes).
const AuditBundleWidth = 32

// AppendBundleLeaf appends one leaf to a bundle's bytes: its length, 4 bytes big-endian, then the
// leaf. The migrations that moved leaves into bundles write the same layout in SQL.
func AppendBundleLeaf(b, leaf []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(leaf)))
	return append(b, leaf...)
}

// ErrBundleMalformed is a bundle whose bytes do not end at a leaf's end.
var ErrBundleMalformed = errors.New("store: audit bundle is malformed")

// NextBundleLeaf splits the first leaf off a bundle's bytes; rest is empty after the last one. The
// leaf is a subslice of b.
func NextBundleLeaf(b []byte) (leaf, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, ErrBundleMalformed
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, ErrBundleMalformed
	}
	return b[4 : 4+n], b[4+n:], nil
}
