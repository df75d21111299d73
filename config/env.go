package config

import "strings"

// applyEnv overlays ONY_* variables on top of the file. An empty value counts
// as set, which is how an operator clears a value the file provides.
func (l *loader) applyEnv(getenv func(string) (string, bool)) {
	for _, lf := range leaves() {
		val, src, ok := l.lookupEnv(lf, getenv)
		if !ok {
			continue
		}
		if err := setString(field(l.cfg, lf), lf.kind, val); err != nil {
			l.addAt(envPlace(src), lf.path, "%s", err)
			continue
		}
		l.setOrigin(lf.path, envPlace(src))
	}
}

// lookupEnv returns the value for one option and the variable it came from.
// Secrets may come from NAME_FILE instead, so they need not sit in the
// process environment; errors name the file but never include its content.
func (l *loader) lookupEnv(lf leaf, getenv func(string) (string, bool)) (val, src string, ok bool) {
	val, ok = getenv(lf.env)
	if !lf.secret() {
		return val, lf.env, ok
	}
	fileVar := lf.env + "_FILE"
	path, fileOK := getenv(fileVar)
	switch {
	case !fileOK:
		return val, lf.env, ok
	case ok:
		l.addAt(envPlace(lf.env), lf.path, "both %s and %s are set; use only one", lf.env, fileVar)
		return "", "", false
	case path == "":
		l.addAt(envPlace(fileVar), lf.path, "is empty; it must name a file holding the value")
		return "", "", false
	}
	b, err := readLimited(path, maxSecretFile)
	if err != nil {
		l.addAt(envPlace(fileVar), lf.path, "cannot read %q: %s", path, ioReason(err))
		return "", "", false
	}
	return strings.TrimRight(string(b), "\r\n"), fileVar, true
}
