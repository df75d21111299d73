package oidc

import (
	"net/url"
	"strings"
)

// DefaultNext is where a person lands after signing in when the flow carried no usable path.
const DefaultNext = "/console/"

// SafeNext returns next when it is a path on this site, else DefaultNext. The path travels through
// the provider and back, so an attacker can start a flow with any value: only a plain local path
// may come out, never something a browser would read as another host ("//evil", "/\evil",
// "https:evil") or a header-splitting control character.
func SafeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") {
		return DefaultNext
	}
	for _, r := range next {
		// Backslashes count as slashes to browsers; control characters and spaces have no place in a
		// path a server printed.
		if r == '\\' || r < 0x20 || r == 0x7f || r == ' ' {
			return DefaultNext
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return DefaultNext
	}
	// A path that decodes to "//host" is a network-path reference once some layer decodes it.
	if strings.HasPrefix(u.Path, "//") || strings.ContainsRune(u.Path, '\\') {
		return DefaultNext
	}
	return next
}
