package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/yamlnode"
)

const (
	maxConfigFile = 1 << 20
	maxSecretFile = 64 << 10
)

// readLimited refuses oversized files so a wrong path such as /dev/zero fails
// fast instead of exhausting memory.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// ioReason drops the path from an *fs.PathError because callers already name it.
func ioReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (l *loader) loadFile() {
	data, err := readLimited(l.file, maxConfigFile)
	if err != nil {
		l.addAt(place{name: l.file}, "", "cannot read config file: %s", ioReason(err))
		return
	}
	l.decodeYAML(data)
}

// syntaxError places the parser's "yaml: line N: ..." at "file:N" (the parser gives no column) and
// anything else at the file as a whole.
func (l *loader) syntaxError(err error) {
	line, _, msg := yamlnode.SyntaxError(err, nil)
	l.addAt(place{name: l.file, line: line}, "", "%s", msg)
}

func (l *loader) decodeYAML(data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			l.syntaxError(err)
		}
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			l.syntaxError(err)
		} else {
			l.addAt(l.filePos(&extra), "", "a second YAML document is not allowed; put everything in one")
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	root = l.w.Resolve(root)
	if yamlnode.IsNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.addAt(l.filePos(root), "", "the top level must be a mapping of options, got %s", yamlnode.Describe(root))
		return
	}
	l.decodeMapping(root, reflect.ValueOf(l.cfg).Elem(), "")
}

// maxConfigNodes bounds the YAML nodes read, aliases followed. The walk cannot grow the way an alias
// bomb makes other formats grow (unknown keys are not read, and options nest two deep), so this is
// only a net: every node of a file takes a byte or more, and only aliases reused across sections can
// push a file within the size limit past it.
const maxConfigNodes = 4 * maxConfigFile

// wording keeps the messages operators know from earlier versions: a section has too many options
// to list in an "unknown key", and the docs list them anyway.
var wording = yamlnode.Wording{
	Mapping:    "a mapping of options",
	Duplicate:  "duplicate key (first set on line %d)",
	Merge:      "merge keys (<<) are not supported; write the options out",
	MergeAtKey: true,
	KeyPath:    quoteKey,
	HideKnown:  true,
}

// decodeMapping walks a mapping against a struct by hand rather than with
// yaml's decoder, so every unknown key, duplicate and type error is reported
// with its own position and the walk never stops at the first problem.
func (l *loader) decodeMapping(n *yaml.Node, v reflect.Value, prefix string) {
	names, index := fieldNames(v.Type())
	l.w.Mapping(n, prefix, names, func(key string, k, val *yaml.Node) {
		path := joinPath(prefix, key)
		fv := v.Field(index[key])
		if kind, leafOK := kindOf(fv.Type()); leafOK {
			if kind == kindString || kind == kindSecret {
				if r := l.w.Resolve(val); r.Kind == yaml.ScalarNode && !yamlnode.IsNull(r) && r.ShortTag() != "!!str" &&
					!anyScalarOptions[path] {
					// Never the value: the option may be a secret.
					l.addAt(l.filePos(r), path, "expected a string, got %s (put it in quotes if it is meant as text)", yamlnode.Describe(r))
					return
				}
			}
			l.decodeLeaf(fv, kind, val, path, l.filePos(k))
			return
		}
		l.decodeMapping(val, fv, path)
	})
}

// quoteKey keeps ordinary key names readable and makes odd ones (empty,
// spaces, huge fuzz input) unambiguous and bounded.
func quoteKey(k string) string {
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return quoteShort(k)
		}
	}
	if k == "" || len(k) > 40 {
		return quoteShort(k)
	}
	return k
}

// fieldNames returns the YAML names of t's fields in order, and each one's field index.
func fieldNames(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := make(map[string]int)
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
			index[name] = i
		}
	}
	return names, index
}

// decodeLeaf sets one option from YAML. A null value leaves the default in
// place, so "key:" with nothing after it behaves like an absent key.
func (l *loader) decodeLeaf(v reflect.Value, kind leafKind, n *yaml.Node, path string, pos place) {
	if kind == kindSecretList || kind == kindStringList {
		l.decodeList(v, n, path, pos)
		return
	}
	if kind == kindStringMap {
		l.decodeMap(v, n, path, pos)
		return
	}
	n = l.w.Resolve(n)
	if !l.w.Visit(n) || yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		l.addAt(l.filePos(n), path, "expected %s, got %s", want(kind), yamlnode.Describe(n))
		return
	}
	if err := setScalar(v, kind, n); err != nil {
		l.addAt(l.filePos(n), path, "%s", err)
		return
	}
	l.setOrigin(path, pos)
}

// decodeList sets a list option ([]Secret or []string); each element keeps the position it is
// written at, so that a bad entry is reported on its own line.
func (l *loader) decodeList(v reflect.Value, n *yaml.Node, path string, pos place) {
	n = l.w.Resolve(n)
	if yamlnode.IsNull(n) {
		return
	}
	items := l.w.Seq(n, path)
	if n.Kind != yaml.SequenceNode || l.w.Halted() {
		return
	}
	list := reflect.Zero(v.Type())
	elemPos := make([]place, 0, len(items))
	ok := true
	for i, raw := range items {
		s, isStr := l.w.Str(raw, fmt.Sprintf("%s[%d]", path, i))
		if !isStr {
			ok = false
			continue
		}
		list = reflect.Append(list, reflect.ValueOf(s).Convert(v.Type().Elem()))
		elemPos = append(elemPos, l.filePos(raw))
	}
	if !ok {
		return
	}
	v.Set(list)
	l.setOrigin(path, pos)
	for i, p := range elemPos {
		l.origin[fmt.Sprintf("%s[%d]", path, i)] = p
	}
}

// decodeMap sets a map option (map[string]string); each entry keeps its position, as list items do.
// (issue 13, oidc: oidc.roles)
func (l *loader) decodeMap(v reflect.Value, n *yaml.Node, path string, pos place) {
	m := map[string]string{}
	entryPos := map[string]place{}
	ok := true
	l.w.Entries(n, path, nil, func(key, kp string, _, val *yaml.Node) {
		s, isStr := l.w.Str(val, kp)
		if !isStr {
			ok = false
			return
		}
		m[key] = s
		entryPos[kp] = l.filePos(l.w.Resolve(val))
	})
	if !ok || l.w.Halted() || len(m) == 0 {
		return
	}
	v.Set(reflect.ValueOf(m))
	l.setOrigin(path, pos)
	for p, at := range entryPos {
		l.origin[p] = at
	}
}

func want(kind leafKind) string {
	switch kind {
	case kindDuration:
		return "a duration such as 90s or 1h30m"
	case kindInt:
		return "an integer"
	case kindBoolPtr, kindBool:
		return "true or false"
	}
	return "a string"
}

// setScalar checks the YAML tag rather than re-parsing text, so "10" in
// quotes is not silently accepted as a number; strings take any scalar.
func setScalar(v reflect.Value, kind leafKind, n *yaml.Node) error {
	tag := n.ShortTag()
	switch kind {
	case kindString, kindSecret:
		v.SetString(n.Value)
	case kindDuration:
		var d Duration
		if err := d.UnmarshalText([]byte(n.Value)); err != nil {
			return err
		}
		v.SetInt(int64(d))
	case kindInt:
		if tag != "!!int" {
			return fmt.Errorf("expected an integer, got %s", yamlnode.Describe(n))
		}
		var x int64
		if err := n.Decode(&x); err != nil || v.OverflowInt(x) {
			return fmt.Errorf("integer %s is out of range", quoteShort(n.Value))
		}
		v.SetInt(x)
	case kindBoolPtr:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return fmt.Errorf("expected true or false, got %s", yamlnode.Describe(n))
		}
		v.Set(reflect.ValueOf(&b))
	case kindBool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return fmt.Errorf("expected true or false, got %s", yamlnode.Describe(n))
		}
		v.SetBool(b)
	}
	return nil
}
