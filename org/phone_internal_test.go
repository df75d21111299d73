package org

import (
	"bytes"
	"strings"
	"testing"
)

// TestNewPhoneCode: six digits, zero-padded; a draw at or above the last whole multiple of 10^6 is
// thrown away (no modulo bias), and a failing source is an error, never a weak code.
func TestNewPhoneCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  []byte
		want string
	}{
		{[]byte{0, 0, 0, 7}, "000007"},
		{[]byte{0, 0x0f, 0x42, 0x3f}, "999999"},
		{[]byte{0, 0x0f, 0x42, 0x40}, "000000"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 42}, "000042"},            // rejected, drawn again
		{[]byte{0xff, 0xf1, 0x3d, 0x80, 0xff, 0xf1, 0x3d, 0x7f}, "999999"}, // 4,294,000,000 rejected; one below kept
	} {
		got, err := newPhoneCode(bytes.NewReader(tc.src))
		if err != nil || got != tc.want {
			t.Errorf("% x: %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	if _, err := newPhoneCode(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Error("a short source gave a code")
	}
}

// FuzzNormalizePhoneCode: whatever is typed as a code, normalizing it refuses it or yields exactly six
// ASCII digits, and a normalized code normalizes to itself.
func FuzzNormalizePhoneCode(f *testing.F) {
	for _, s := range []string{"123456", " 123 456 ", "123-456", "12345", "1234567", "١٢٣٤٥٦", "12345a", "", "\t123456\n",
		strings.Repeat("1", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := normalizePhoneCode(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if len(n) != 6 || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("%q → %q", s, n)
		}
		if again, ok := normalizePhoneCode(n); !ok || again != n {
			t.Fatalf("%q → %q → %q, %v", s, n, again, ok)
		}
	})
}
