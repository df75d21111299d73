package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strings"

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
		l.addAt(l.file, "", "cannot read config file: %s", ioReason(err))
		return
	}
	l.decodeYAML(data)
}

var yamlLineErr = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxError turns the parser's "yaml: line N: ..." text into a position;
// the parser reports no column, so the position is "file:N".
func (l *loader) syntaxError(err error) {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		l.addAt(l.file+":"+m[1], "", "invalid YAML: %s", m[2])
		return
	}
	l.addAt(l.file, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
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
			l.addAt(l.filePos(extra.Line, extra.Column), "", "a second YAML document is not allowed; put everything in one")
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.addAt(l.filePos(root.Line, root.Column), "", "the top level must be a mapping of options, got %s", yamlnode.Describe(root))
		return
	}
	l.decodeMapping(root, reflect.ValueOf(l.cfg).Elem(), "")
}

// resolve follows aliases; the bound stops a pathological chain.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decodeMapping walks a mapping against a struct by hand rather than with
// yaml's decoder, so every unknown key, duplicate and type error is reported
// with its own position and the walk never stops at the first problem.
func (l *loader) decodeMapping(n *yaml.Node, v reflect.Value, prefix string) {
	known := fieldNames(v.Type())
	firstLine := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		pos := l.filePos(n.Content[i].Line, n.Content[i].Column)
		if key.Kind != yaml.ScalarNode {
			l.addAt(pos, prefix, "keys must be plain names, got %s", yamlnode.Describe(key))
			continue
		}
		path := joinPath(prefix, key.Value)
		if key.ShortTag() == "!!merge" {
			l.addAt(pos, path, "merge keys (<<) are not supported; write the options out")
			continue
		}
		idx, ok := known[key.Value]
		if !ok {
			l.addAt(pos, joinPath(prefix, quoteKey(key.Value)), "unknown key%s", yamlnode.Suggest(key.Value, keys(known)))
			continue
		}
		if line, dup := firstLine[key.Value]; dup {
			l.addAt(pos, path, "duplicate key (first set on line %d)", line)
			continue
		}
		firstLine[key.Value] = key.Line
		fv := v.Field(idx)
		if kind, leafOK := kindOf(fv.Type()); leafOK {
			l.decodeLeaf(fv, kind, val, path, pos)
			continue
		}
		if isNull(val) {
			continue
		}
		if val.Kind != yaml.MappingNode {
			l.addAt(l.filePos(val.Line, val.Column), path, "expected a mapping of options, got %s", yamlnode.Describe(val))
			continue
		}
		l.decodeMapping(val, fv, path)
	}
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

func fieldNames(t reflect.Type) map[string]int {
	out := make(map[string]int)
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			out[name] = i
		}
	}
	return out
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// decodeLeaf sets one option from YAML. A null value leaves the default in
// place, so "key:" with nothing after it behaves like an absent key.
func (l *loader) decodeLeaf(v reflect.Value, kind leafKind, n *yaml.Node, path, pos string) {
	if isNull(n) {
		return
	}
	valPos := l.filePos(n.Line, n.Column)
	if kind == kindSecretList {
		l.decodeSecretList(v, n, path, pos)
		return
	}
	if n.Kind != yaml.ScalarNode {
		l.addAt(valPos, path, "expected %s, got %s", want(kind), yamlnode.Describe(n))
		return
	}
	if err := setScalar(v, kind, n); err != nil {
		l.addAt(valPos, path, "%s", err)
		return
	}
	l.setOrigin(path, pos)
}

func (l *loader) decodeSecretList(v reflect.Value, n *yaml.Node, path, pos string) {
	if n.Kind != yaml.SequenceNode {
		l.addAt(l.filePos(n.Line, n.Column), path, "expected a list, got %s", yamlnode.Describe(n))
		return
	}
	var list []Secret
	elemPos := make([]string, 0, len(n.Content))
	ok := true
	for i, raw := range n.Content {
		e := resolve(raw)
		p := l.filePos(raw.Line, raw.Column)
		if e.Kind != yaml.ScalarNode || isNull(e) {
			l.addAt(p, fmt.Sprintf("%s[%d]", path, i), "expected a string, got %s", yamlnode.Describe(e))
			ok = false
			continue
		}
		list = append(list, Secret(e.Value))
		elemPos = append(elemPos, p)
	}
	if !ok {
		return
	}
	v.Set(reflect.ValueOf(list))
	l.setOrigin(path, pos)
	for i, p := range elemPos {
		l.origin[fmt.Sprintf("%s[%d]", path, i)] = p
	}
}

func want(kind leafKind) string {
	switch kind {
	case kindDuration:
		return "a duration such as 90s or 1h30m"
	case kindInt:
		return "an integer"
	case kindBoolPtr:
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
	}
	return nil
}
