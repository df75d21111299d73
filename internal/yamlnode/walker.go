package yamlnode

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// Walker reads a YAML tree strictly, reporting every mistake through Add rather than stopping at the
// first, so that a file can be fixed in one pass. Add receives finished messages and the node they
// are about (nil for the input as a whole); callers make Diagnostics of them with At, and may cap or
// skip them.
//
// Every node a method looks at, aliases followed, counts against Max: a few lines of nested aliases
// can stand for billions of nodes, and the walk must end. Once Max is passed the walker reports it
// once and halts, and every method then reads nothing.
type Walker struct {
	Max int
	// Input names what is read in the message for a spent budget, e.g. "policy" or "the file".
	Input string
	Add   func(n *yaml.Node, path, msg string)
	// Wording is how Mapping words what it finds; the zero value is that of policies and ladders.
	Wording Wording

	visits int
	halted bool
}

// Wording holds the phrases in which the formats differ, each of which their users already know:
// configuration has its own, policies and ladders share the zero value's.
type Wording struct {
	// Mapping names what a mapping holds, as in "expected a mapping of options, got a list".
	// "" is "a mapping".
	Mapping string
	// Duplicate reports a repeated key, given the line of the first; "" is
	// "duplicate key (first on line %d)".
	Duplicate string
	// Merge reports a merge key (<<); "" is "merge keys (<<) are not supported". MergeAtKey puts it at
	// path.<< rather than at the mapping.
	Merge      string
	MergeAtKey bool
	// KeyPath writes an unknown key into its path, e.g. quoting odd ones; nil writes it as it is.
	KeyPath func(key string) string
	// HideKnown leaves the list of known keys out of "unknown key", for mappings with too many to
	// list in a message.
	HideKnown bool
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Halt stops the walk, e.g. when a caller has reported enough mistakes.
func (w *Walker) Halt() { w.halted = true }

// Halted reports whether the walk has stopped, so that callers skip checks that would only report
// the absence of what was never read.
func (w *Walker) Halted() bool { return w.halted }

func (w *Walker) addf(n *yaml.Node, path, format string, args ...any) {
	w.Add(n, path, fmt.Sprintf(format, args...))
}

// Visit counts n against the budget; false means the walk has halted and n must not be read.
func (w *Walker) Visit(n *yaml.Node) bool {
	if w.halted {
		return false
	}
	w.visits++
	if w.visits > w.Max {
		w.addf(n, "", "%s is too large or nests too many aliases (more than %d values)", w.Input, w.Max)
		w.halted = true
		return false
	}
	return true
}

// Resolve follows aliases; the bound stops a pathological chain.
func (w *Walker) Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// Mapping walks the mapping n of fixed keys, calling f for each known key in file order, and reports
// unknown and repeated keys and a value of the wrong shape. Null counts as an empty mapping, since
// that is what a key with nothing under it yet means. It reports whether n was a mapping (or null),
// so that callers skip checks for keys that were never read.
func (w *Walker) Mapping(n *yaml.Node, path string, known []string, f func(key string, k, v *yaml.Node)) bool {
	n = w.Resolve(n)
	if !w.Visit(n) {
		return false
	}
	if IsNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		w.notMapping(n, path)
		return false
	}
	wd := w.Wording
	firstAt := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := w.Resolve(n.Content[i]), n.Content[i+1]
		if !w.Visit(k) {
			return true
		}
		if k.Kind != yaml.ScalarNode {
			w.addf(k, path, "keys must be plain names, got %s", Describe(k))
			continue
		}
		kp := joinPath(path, k.Value)
		switch {
		case k.ShortTag() == "!!merge":
			mp := path
			if wd.MergeAtKey {
				mp = kp
			}
			w.Add(k, mp, or(wd.Merge, "merge keys (<<) are not supported"))
		case !slices.Contains(known, k.Value):
			w.unknownKey(k, path, known)
		case firstAt[k.Value] > 0:
			w.addf(k, kp, or(wd.Duplicate, "duplicate key (first on line %d)"), firstAt[k.Value])
		default:
			firstAt[k.Value] = k.Line
			f(k.Value, k, v)
		}
	}
	return true
}

func (w *Walker) notMapping(n *yaml.Node, path string) {
	w.addf(n, path, "expected %s, got %s", or(w.Wording.Mapping, "a mapping"), Describe(n))
}

func (w *Walker) unknownKey(k *yaml.Node, path string, known []string) {
	key := k.Value
	if w.Wording.KeyPath != nil {
		key = w.Wording.KeyPath(key)
	}
	msg := "unknown key" + Suggest(k.Value, known)
	if !w.Wording.HideKnown {
		msg += "; known keys: " + strings.Join(known, ", ")
	}
	w.Add(k, joinPath(path, key), msg)
}

// Entries walks a mapping whose keys the user chooses (rule ids, globs, labels), calling f with each
// key, its path (path["key"]) and its nodes. Keys equal after norm are duplicates: a caller that
// compares keys case-insensitively passes a folding norm, so that two spellings of one key do not
// silently overwrite each other. A nil norm compares keys as written. Null counts as empty.
func (w *Walker) Entries(n *yaml.Node, path string, norm func(string) string, f func(key, path string, k, v *yaml.Node)) {
	n = w.Resolve(n)
	if !w.Visit(n) || IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.notMapping(n, path)
		return
	}
	firstAt := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := w.Resolve(n.Content[i]), n.Content[i+1]
		if !w.Visit(k) {
			return
		}
		if k.Kind != yaml.ScalarNode || IsNull(k) || k.ShortTag() == "!!merge" {
			w.addf(k, path, "keys must be plain names, got %s", Describe(k))
			continue
		}
		kp := fmt.Sprintf("%s[%q]", path, k.Value)
		same := k.Value
		if norm != nil {
			same = norm(same)
		}
		if firstAt[same] > 0 {
			w.addf(k, kp, or(w.Wording.Duplicate, "duplicate key (first on line %d)"), firstAt[same])
			continue
		}
		firstAt[same] = k.Line
		f(k.Value, kp, k, v)
	}
}

// Seq returns the items of the list n; null counts as an empty list.
func (w *Walker) Seq(n *yaml.Node, path string) []*yaml.Node {
	n = w.Resolve(n)
	if !w.Visit(n) || IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.addf(n, path, "expected a list, got %s", Describe(n))
		return nil
	}
	return n.Content
}

// StrList returns the strings of the list n and their (resolved) nodes, for errors about single
// items; items that are not strings are reported and skipped, so the two slices stay in step.
func (w *Walker) StrList(n *yaml.Node, path string) ([]string, []*yaml.Node) {
	var out []string
	var nodes []*yaml.Node
	for i, item := range w.Seq(n, path) {
		if s, ok := w.Str(item, fmt.Sprintf("%s[%d]", path, i)); ok {
			out = append(out, s)
			nodes = append(nodes, w.Resolve(item))
		}
	}
	return out, nodes
}

// Str accepts any scalar but null, so that keywords: [404] means "404" rather than an error about
// integers the writer never meant.
func (w *Walker) Str(n *yaml.Node, path string) (string, bool) {
	n = w.Resolve(n)
	if !w.Visit(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		w.addf(n, path, "expected a string, got %s", Describe(n))
		return "", false
	}
	return n.Value, true
}

// IsNull reports a null scalar, and an alias the parser left unresolved, which reads as nothing.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" || n.Kind == yaml.AliasNode && n.Alias == nil
}

// DescribeValue quotes a short scalar, so that a message shows what was written, and describes
// anything else, which would not fit in one.
func DescribeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !IsNull(n) && len(n.Value) <= 40 {
		return strconv.Quote(n.Value)
	}
	return Describe(n)
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

var yamlLineErr = lazyregexp.New(`(?s)^yaml: line (\d+): (.*)$`)

// SyntaxError turns an error of the YAML decoder into a position and an "invalid YAML: ..." message.
// The decoder says "yaml: line N: ..." and gives no column, so col is 0 then. Errors without a line
// (bad encodings, unknown anchors) are placed at the first character YAML cannot read, or else at
// line 1, column 1; with nil data they are not placed (line 0), which is what configuration has
// always reported.
func SyntaxError(err error, data []byte) (line, col int, msg string) {
	msg = err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, 0, "invalid YAML: " + m[2]
	}
	if data != nil {
		line, col = badCharPosition(data)
	}
	return line, col, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// badCharPosition finds the first character YAML does not allow (invalid UTF-8 or a control
// character), or else returns line 1, column 1.
func badCharPosition(data []byte) (line, col int) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || !yamlPrintable(r) {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 1, 1
}

// yamlPrintable is YAML 1.2's c-printable set.
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}
