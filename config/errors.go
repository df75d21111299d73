package config

import "strings"

// Errors is every problem Load found, so an operator can fix them in one pass
// instead of one restart per mistake.
type Errors struct {
	List []FieldError
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// FieldError is one problem. Pos says where the offending value came from:
// "file:line:col" for the YAML file, the variable name for the environment,
// or "" when the value is a built-in default.
type FieldError struct {
	Path string
	Pos  string
	Msg  string
}

func (fe FieldError) Error() string {
	var parts []string
	for _, s := range []string{fe.Pos, fe.Path, fe.Msg} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}
