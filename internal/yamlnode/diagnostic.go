package yamlnode

import (
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Diagnostic is one mistake in a configuration file, a risk policy or a ladder. File names where
// the offending value came from: the file, or, for configuration, the environment variable that set
// it ("" for a built-in default). Path names the value, e.g. steps[1].targets[0]. Line and Column
// are 1-based; Column is 0 when only the line is known (YAML syntax errors), and Line is 0 for
// problems with the file as a whole or with a variable.
//
// The JSON form is what the ladder API returns in its error details; it is a public contract.
type Diagnostic struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
	Msg    string `json:"message"`
}

// At places a diagnostic at n in file; a nil n places it on the file as a whole.
func At(file string, n *yaml.Node, path, msg string) Diagnostic {
	d := Diagnostic{File: file, Path: path, Msg: msg}
	if n != nil {
		d.Line, d.Column = n.Line, n.Column
	}
	return d
}

// Pos formats where the mistake is as "file:line:col", leaving out what is unknown.
func (d Diagnostic) Pos() string {
	var pos []string
	if d.File != "" {
		pos = append(pos, d.File)
	}
	if d.Line > 0 {
		pos = append(pos, strconv.Itoa(d.Line))
		if d.Column > 0 {
			pos = append(pos, strconv.Itoa(d.Column))
		}
	}
	return strings.Join(pos, ":")
}

// Error formats the mistake as "file:line:col: path: message", leaving out what is unknown.
func (d Diagnostic) Error() string {
	var parts []string
	for _, s := range []string{d.Pos(), d.Path, d.Msg} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// Diagnostics is every mistake found, so that they can all be fixed in one pass. Its Error has one
// line per mistake.
type Diagnostics struct {
	List []Diagnostic
}

func (e *Diagnostics) Error() string {
	lines := make([]string, len(e.List))
	for i, d := range e.List {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort puts list in file order (order gives each file's rank; nil sorts by name), then by position,
// keeping the order of mistakes at one place. Whole-file mistakes (line 0) come first in their file.
func Sort(list []Diagnostic, order map[string]int) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.File != b.File {
			if order != nil {
				return order[a.File] < order[b.File]
			}
			return a.File < b.File
		}
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
}
