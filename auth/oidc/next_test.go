package oidc

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                              DefaultNext,
		"/":                             "/",
		"/console/":                     "/console/",
		"/console/handoffs/h1":          "/console/handoffs/h1",
		"/console/?status=open#x":       "/console/?status=open#x",
		"/a/b//c":                       "/a/b//c",
		"//evil.example":                DefaultNext,
		"///evil.example":               DefaultNext,
		"/\\evil.example":               DefaultNext,
		"\\\\evil.example":              DefaultNext,
		"/console\\..\\x":               DefaultNext,
		"https://evil.example/":         DefaultNext,
		"javascript:alert(1)":           DefaultNext,
		"evil.example":                  DefaultNext,
		"console/":                      DefaultNext,
		" /console/":                    DefaultNext,
		"/console/\r\nSet-Cookie":       DefaultNext,
		"/con sole":                     DefaultNext,
		"/\t/evil.example":              DefaultNext,
		"/%2F/evil.example":             DefaultNext, // decodes to //evil.example
		"/%5Cevil.example":              DefaultNext, // decodes to /\evil.example
		"/%zz":                          DefaultNext,
		"/" + strings.Repeat("a", 3000): DefaultNext,
	} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeNext: whatever comes in, what comes out is a path on this site, as a browser resolves it.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/", "//evil", "/\\evil", "https://x", "/a?b#c", "/%2F%2Fx", "/\x00"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://ony.example/console/sso/callback")
	f.Fuzz(func(t *testing.T, in string) {
		out := SafeNext(in)
		if out != in && out != DefaultNext {
			t.Fatalf("SafeNext(%q) = %q: neither the input nor the default", in, out)
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\r\n\t ") {
			t.Fatalf("SafeNext(%q) = %q is not a plain local path", in, out)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("SafeNext(%q) = %q does not parse: %v", in, out, err)
		}
		if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("SafeNext(%q) = %q leaves the site: %s", in, out, r)
		}
	})
}
