package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// loader carries one Load call: the config being built, where each value came
// from (so a validation error can point at the line or variable that set it)
// and every problem found so far.
type loader struct {
	cfg    *Config
	file   string
	origin map[string]place
	errs   []yamlnode.Diagnostic
	w      yamlnode.Walker
	// derivedURL is set when public_url was filled in from listen.
	derivedURL bool
}

// derivePublicURL runs after file and env so the default follows the final
// listen address; an empty value from either counts as "derive it".
func (l *loader) derivePublicURL() {
	if l.cfg.PublicURL == "" {
		l.cfg.PublicURL = derivePublicURL(l.cfg.Listen)
		l.derivedURL = true
	}
}

func newLoader(cfg *Config, file string) *loader {
	l := &loader{cfg: cfg, file: file, origin: make(map[string]place)}
	l.w = yamlnode.Walker{Max: maxConfigNodes, Input: "the file", Wording: wording, Add: func(n *yaml.Node, path, msg string) {
		l.errs = append(l.errs, yamlnode.At(l.file, n, path, msg))
	}}
	return l
}

func (l *loader) addAt(at place, path, format string, args ...any) {
	l.errs = append(l.errs, at.diagnostic(path, fmt.Sprintf(format, args...)))
}

// fail reports a problem with a value, located wherever that value was set.
func (l *loader) fail(path, format string, args ...any) {
	l.addAt(l.posOf(path), path, format, args...)
}

// posOf falls back from "keyring.keys[2]" to "keyring.keys" because list
// elements from the environment share their variable's position.
func (l *loader) posOf(path string) place {
	if p, ok := l.origin[path]; ok {
		return p
	}
	if i := strings.LastIndexByte(path, '['); i > 0 {
		return l.origin[path[:i]]
	}
	return place{}
}

// setOrigin also forgets element positions of a list that is being replaced,
// so an env override is not blamed on lines of the file.
func (l *loader) setOrigin(path string, pos place) {
	for p := range l.origin {
		if strings.HasPrefix(p, path+"[") {
			delete(l.origin, p)
		}
	}
	l.origin[path] = pos
}

func (l *loader) filePos(n *yaml.Node) place {
	return place{name: l.file, line: n.Line, col: n.Column}
}
