package risk

import (
	"bytes"
	"strings"
	"testing"
)

// TestFormatExplanation checks what the table shows of a payload: each match quoted on one line, and
// nothing (and no panic) for a match that lies outside the payload it is given.
func TestFormatExplanation(t *testing.T) {
	t.Parallel()
	payload := "sudo rm -rf ./build\n"
	x := Default().Explain(cmd(payload))
	for _, tc := range []struct {
		name, payload string
		o             TextOptions
		want, not     []string
	}{
		{"fired", payload, TextOptions{},
			[]string{"policy  (none: built-in rules)\n", "fired rules (", `"sudo "`, "\nfinal    high\n"}, []string{"ORIGIN"}},
		{"all", payload, TextOptions{Policy: "p.yaml", All: true},
			[]string{"policy  p.yaml\n", "\nrules (", "ORIGIN", "skipped: labels", "no keyword", " fired "}, nil},
		{"payload shorter than the matches", "sudo", TextOptions{},
			[]string{"shell.sudo", "\nfinal    high\n"}, []string{`"sudo "`, `"sudo"`}},
	} {
		var b bytes.Buffer
		if err := FormatExplanation(&b, x, tc.payload, tc.o); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: the table lacks %q:\n%s", tc.name, w, b.String())
			}
		}
		for _, n := range tc.not {
			if strings.Contains(b.String(), n) {
				t.Errorf("%s: the table shows %q:\n%s", tc.name, n, b.String())
			}
		}
	}
}

func TestQuoteTruncated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, `"abc"`},
		{"abcd", 3, `"abc"…`},
		{"héllo\nworld", 5, `"héllo"…`},
		{"a\x1b[2Jb", 10, `"a\x1b[2Jb"`},
	} {
		if got := quoteTruncated(tc.s, tc.n); got != tc.want {
			t.Errorf("quoteTruncated(%q, %d) = %s, want %s", tc.s, tc.n, got, tc.want)
		}
	}
}
