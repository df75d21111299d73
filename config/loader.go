package config

import (
	"fmt"
	"strings"
)

// loader carries one Load call: the config being built, where each value came
// from (so a validation error can point at the line or variable that set it)
// and every problem found so far.
type loader struct {
	cfg    *Config
	file   string
	origin map[string]string
	errs   []FieldError
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
	return &loader{cfg: cfg, file: file, origin: make(map[string]string)}
}

func (l *loader) addAt(pos, path, format string, args ...any) {
	l.errs = append(l.errs, FieldError{Path: path, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a problem with a value, located wherever that value was set.
func (l *loader) fail(path, format string, args ...any) {
	l.addAt(l.posOf(path), path, format, args...)
}

// posOf falls back from "keyring.keys[2]" to "keyring.keys" because list
// elements from the environment share their variable's position.
func (l *loader) posOf(path string) string {
	if p, ok := l.origin[path]; ok {
		return p
	}
	if i := strings.LastIndexByte(path, '['); i > 0 {
		return l.origin[path[:i]]
	}
	return ""
}

// setOrigin also forgets element positions of a list that is being replaced,
// so an env override is not blamed on lines of the file.
func (l *loader) setOrigin(path, pos string) {
	for p := range l.origin {
		if strings.HasPrefix(p, path+"[") {
			delete(l.origin, p)
		}
	}
	l.origin[path] = pos
}

func (l *loader) filePos(line, col int) string {
	return fmt.Sprintf("%s:%d:%d", l.file, line, col)
}
