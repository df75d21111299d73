package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// leafKind is the set of field types the loader knows how to read; adding a
// field of another type panics in the tests rather than being silently ignored.
type leafKind int

const (
	kindString leafKind = iota
	kindSecret
	kindSecretList
	kindStringList
	kindDuration
	kindInt
	kindBoolPtr
	kindBool
	kindStringMap // YAML: a mapping of strings; env: "key=value" entries (issue 13, oidc)
)

// leaf is one settable option, derived from the yaml tags so the env names,
// the YAML schema and the docs cannot drift apart.
type leaf struct {
	path  string
	env   string
	index []int
	kind  leafKind
}

// anyScalarOptions are the string options that name something, where `instance: 42` or
// `org_name: 2024` is a fair value: YAML reads those as numbers (or booleans, or dates), and these
// options take the text as written. Every other string option refuses a scalar that is not a string
// (`escalation.ladders_dir: 5`), since for a path, URL, address, e-mail or keyword it is surely a
// mistake. A test checks that each entry is a string option.
var anyScalarOptions = map[string]bool{
	"instance":           true, // the audit origin's name
	"redis.prefix":       true,
	"summarizer.api_key": true, // the provider's format: digits are possible
	"summarizer.model":   true,
	"bootstrap.org_name": true,
	"oidc.client_id":     true, // some providers issue numeric client ids
	"oidc.org":           true,
}

func (l leaf) secret() bool { return l.kind == kindSecret || l.kind == kindSecretList }

func leaves() []leaf {
	return appendLeaves(nil, reflect.TypeFor[Config](), "", nil)
}

func appendLeaves(out []leaf, t reflect.Type, prefix string, index []int) []leaf {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		path := joinPath(prefix, name)
		idx := append(index[:len(index):len(index)], i)
		if k, ok := kindOf(f.Type); ok {
			out = append(out, leaf{path: path, env: envName(path), index: idx, kind: k})
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			panic(fmt.Sprintf("config: field %s has unsupported type %s", path, f.Type))
		}
		out = appendLeaves(out, f.Type, path, idx)
	}
	return out
}

func kindOf(t reflect.Type) (leafKind, bool) {
	switch t {
	case reflect.TypeFor[Secret]():
		return kindSecret, true
	case reflect.TypeFor[[]Secret]():
		return kindSecretList, true
	case reflect.TypeFor[[]string]():
		return kindStringList, true
	case reflect.TypeFor[Duration]():
		return kindDuration, true
	case reflect.TypeFor[*bool]():
		return kindBoolPtr, true
	case reflect.TypeFor[bool]():
		return kindBool, true
	case reflect.TypeFor[map[string]string]():
		return kindStringMap, true
	}
	switch t.Kind() {
	case reflect.String:
		return kindString, true
	case reflect.Int, reflect.Int64:
		return kindInt, true
	}
	return 0, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func envName(path string) string {
	return "ONY_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// setString parses an environment value into a leaf; the error never contains
// the input for secret kinds.
func setString(v reflect.Value, kind leafKind, s string) error {
	switch kind {
	case kindString, kindSecret:
		v.SetString(s)
	case kindSecretList:
		v.Set(reflect.ValueOf(splitSecrets(s)))
	case kindStringList:
		v.Set(reflect.ValueOf(splitList(s)))
	case kindDuration:
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		v.SetInt(int64(d))
	case kindInt:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %s", quoteShort(s))
		}
		v.SetInt(n)
	case kindBoolPtr:
		// Empty means "automatic", the same as leaving the option out.
		if s == "" {
			v.SetZero()
			return nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %s (use true or false)", quoteShort(s))
		}
		v.Set(reflect.ValueOf(&b))
	case kindBool:
		// Empty is the default, false, like leaving the option out.
		b := false
		if s != "" {
			var err error
			if b, err = strconv.ParseBool(s); err != nil {
				return fmt.Errorf("invalid boolean %s (use true or false)", quoteShort(s))
			}
		}
		v.SetBool(b)
	case kindStringMap:
		m, err := splitMap(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
	}
	return nil
}

// splitMap reads a mapping from one variable: "key=value" entries separated by commas or newlines.
// The key is cut at the last "=", so keys may hold "=" (values here never do).
func splitMap(s string) (map[string]string, error) {
	var out map[string]string
	for i, part := range splitList(s) {
		j := strings.LastIndexByte(part, '=')
		if j <= 0 || strings.TrimSpace(part[:j]) == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		if out == nil {
			out = map[string]string{}
		}
		k := strings.TrimSpace(part[:j])
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("entry %d repeats the key %s", i+1, quoteShort(k))
		}
		out[k] = strings.TrimSpace(part[j+1:])
	}
	return out, nil
}

// splitSecrets accepts commas and newlines so a key file can hold one key per line.
func splitSecrets(s string) []Secret {
	var out []Secret
	for _, part := range splitList(s) {
		out = append(out, Secret(part))
	}
	return out
}

// splitList reads a list from one variable: entries separated by commas or newlines.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
