// Package lazyregexp holds regular expressions compiled on first use rather than at start.
// Every command runs every package's initializers; most never use most validators.
package lazyregexp

import (
	"os"
	"regexp"
	"strings"
	"sync"
)

// Regexp is a regexp.Regexp compiled the first time it is used.
type Regexp struct {
	str  string
	once sync.Once
	rx   *regexp.Regexp
}

func (r *Regexp) re() *regexp.Regexp {
	r.once.Do(func() { r.rx = regexp.MustCompile(r.str) })
	return r.rx
}

// inTest compiles every pattern at once in a test binary, so a bad pattern fails its package's tests
// even when no test uses it.
var inTest = len(os.Args) > 0 && strings.HasSuffix(strings.TrimSuffix(os.Args[0], ".exe"), ".test")

// New is regexp.MustCompile, deferred to the first use.
func New(str string) *Regexp {
	r := &Regexp{str: str}
	if inTest {
		r.re()
	}
	return r
}

// The methods are regexp.Regexp's own, those Ony's patterns are used with.

func (r *Regexp) MatchString(s string) bool                { return r.re().MatchString(s) }
func (r *Regexp) FindStringIndex(s string) []int           { return r.re().FindStringIndex(s) }
func (r *Regexp) FindStringSubmatch(s string) []string     { return r.re().FindStringSubmatch(s) }
func (r *Regexp) ReplaceAllString(src, repl string) string { return r.re().ReplaceAllString(src, repl) }
func (r *Regexp) ReplaceAllStringFunc(src string, repl func(string) string) string {
	return r.re().ReplaceAllStringFunc(src, repl)
}
