package org

import (
	"strings"
	"testing"
)

// FuzzNormalizeLinkCode: whatever a chat sends as a code, normalizing it either refuses it or yields
// exactly twelve symbols of the alphabet, and a normalized code normalizes to itself.
func FuzzNormalizeLinkCode(f *testing.F) {
	for _, s := range []string{"abcd-efgh-jkmn", "ABCD EFGH JKMN", "0o1i-lL23-4567", "", "-", "abcd-efgh-jkmn-p", "ü", "abcdefghjkmn\x00",
		strings.Repeat("a", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := normalizeLinkCode(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if len(n) != linkCodeLen {
			t.Fatalf("%q → %q: length %d", s, n, len(n))
		}
		for _, r := range n {
			if !strings.ContainsRune(linkAlphabet, r) {
				t.Fatalf("%q → %q: %q outside the alphabet", s, n, r)
			}
		}
		if again, ok := normalizeLinkCode(n); !ok || again != n {
			t.Fatalf("%q → %q → %q, %v", s, n, again, ok)
		}
	})
}
