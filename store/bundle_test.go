package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestBundleRoundTrip(t *testing.T) {
	t.Parallel()
	leaves := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{0}, 70_000), []byte(`{"type":"handoff.created"}`)}
	var b []byte
	for _, l := range leaves {
		b = AppendBundleLeaf(b, l)
	}
	for k, rest := 0, b; len(rest) > 0; k++ {
		leaf, r, err := NextBundleLeaf(rest)
		if err != nil {
			t.Fatalf("leaf %d: %v", k, err)
		}
		if !bytes.Equal(leaf, leaves[k]) {
			t.Fatalf("leaf %d: %q, want %q", k, leaf, leaves[k])
		}
		rest = r
	}
	for _, bad := range [][]byte{{0, 0, 0}, {0, 0, 0, 2, 'x'}, {0xff, 0xff, 0xff, 0xff}} {
		if _, _, err := NextBundleLeaf(bad); !errors.Is(err, ErrBundleMalformed) {
			t.Errorf("%x: %v, want ErrBundleMalformed", bad, err)
		}
	}
}

// FuzzBundle: whatever the stored bytes, splitting never reads past them, and what splits cleanly
// re-encodes to the same bytes.
func FuzzBundle(f *testing.F) {
	f.Add(AppendBundleLeaf(AppendBundleLeaf(nil, []byte("one")), []byte("two")))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var again []byte
		for rest := b; len(rest) > 0; {
			leaf, r, err := NextBundleLeaf(rest)
			if err != nil {
				return
			}
			if len(r) >= len(rest) {
				t.Fatal("no progress")
			}
			again, rest = AppendBundleLeaf(again, leaf), r
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, want %x", again, b)
		}
	})
}
