package config

import "github.com/ony-ai/ony/internal/yamlnode"

// Errors is every problem Load found, so an operator can fix them in one pass instead of one
// restart per mistake. Each problem is placed where the offending value came from: a line of the
// file, the environment variable (its name as the File, without a line), or nowhere for a built-in
// default.
type Errors = yamlnode.Diagnostics

// place is where a value was set, and so where a problem with it is reported: a line and column
// of the file, an environment variable (its name, no line), or nowhere (a built-in default).
type place struct {
	name      string // the file or the variable
	line, col int
}

func envPlace(name string) place { return place{name: name} }

func (p place) diagnostic(path, msg string) yamlnode.Diagnostic {
	return yamlnode.Diagnostic{File: p.name, Line: p.line, Column: p.col, Path: path, Msg: msg}
}
