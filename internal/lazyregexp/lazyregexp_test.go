package lazyregexp

import (
	"fmt"
	"regexp"
	"testing"
)

func TestCompilesOnFirstUse(t *testing.T) {
	t.Parallel()
	// Built as New builds it outside a test binary.
	r := &Regexp{str: `^[a-z]{1,3}$`}
	if r.rx != nil {
		t.Fatal("compiled before use")
	}
	if !r.MatchString("abc") || r.MatchString("abcd") {
		t.Fatal("matches differ from the pattern")
	}
	if r.rx == nil {
		t.Fatal("not compiled after use")
	}
}

func TestBadPatternPanicsAtUse(t *testing.T) {
	t.Parallel()
	r := &Regexp{str: `(`}
	defer func() {
		if recover() == nil {
			t.Fatal("a bad pattern did not panic at its first use")
		}
	}()
	r.MatchString("x")
}

func TestBadPatternPanicsAtNewInTests(t *testing.T) {
	t.Parallel()
	if !inTest {
		t.Fatal("a test binary was not recognised as one")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New did not compile at once in a test binary")
		}
	}()
	New(`(`)
}

func TestMethodsMatchRegexp(t *testing.T) {
	t.Parallel()
	const pat, s = `([a-z]+)([0-9]+)`, "ab12 cd34 ef"
	r, want := New(pat), regexp.MustCompile(pat)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"FindStringIndex", r.FindStringIndex(s), want.FindStringIndex(s)},
		{"FindStringSubmatch", r.FindStringSubmatch(s), want.FindStringSubmatch(s)},
		{"ReplaceAllString", r.ReplaceAllString(s, "$2"), want.ReplaceAllString(s, "$2")},
		{"ReplaceAllStringFunc", r.ReplaceAllStringFunc(s, func(string) string { return "x" }), want.ReplaceAllStringFunc(s, func(string) string { return "x" })},
	} {
		if g, w := fmt.Sprint(c.got), fmt.Sprint(c.want); g != w {
			t.Errorf("%s = %s, want %s", c.name, g, w)
		}
	}
}

// The validators on a create's path pay the once's check on every match.
func BenchmarkMatchString(b *testing.B) {
	const pat, s = `^[a-z0-9][a-z0-9_./-]{0,62}$`, "team/payments.service"
	b.Run("regexp", func(b *testing.B) {
		r := regexp.MustCompile(pat)
		for b.Loop() {
			r.MatchString(s)
		}
	})
	b.Run("lazy", func(b *testing.B) {
		r := New(pat)
		for b.Loop() {
			r.MatchString(s)
		}
	})
}
