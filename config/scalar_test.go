package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// yamlOf writes one YAML file setting each option path to its value, sections nested, and returns
// the line of each path.
func yamlOf(values map[string]string) (string, map[string]int) {
	var paths []string
	for p := range values {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var b strings.Builder
	lines := map[string]int{}
	line := 0
	var open []string // the sections the previous key sits in
	for _, p := range paths {
		parts := strings.Split(p, ".")
		parents := parts[:len(parts)-1]
		same := 0
		for same < len(open) && same < len(parents) && open[same] == parents[same] {
			same++
		}
		for i := same; i < len(parents); i++ {
			line++
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), parents[i])
		}
		open = parents
		line++
		lines[p] = line
		fmt.Fprintf(&b, "%s%s: %s\n", strings.Repeat("  ", len(parents)), parts[len(parts)-1], values[p])
	}
	return b.String(), lines
}

// TestStringOptionsRefuseOtherScalars: a path, URL, address or keyword written as a number, boolean
// or date is a mistake reported at its line (every one at once), without the value, which may be a
// secret; quoted, the same text is a string.
func TestStringOptionsRefuseOtherScalars(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ value, got string }{
		{"5", "an integer"}, {"123456789", "an integer"}, {"0x1F", "an integer"}, {"1.5", "a number"},
		{"true", "a boolean"}, {"2024-01-02", "a !!timestamp value"},
	} {
		values := map[string]string{}
		for _, lf := range leaves() {
			if (lf.kind == kindString || lf.kind == kindSecret) && !anyScalarOptions[lf.path] {
				values[lf.path] = c.value
			}
		}
		if len(values) < 10 {
			t.Fatalf("only %d string options", len(values))
		}
		yaml, lines := yamlOf(values)
		file, list := loadErrors(t, yaml, nil)
		for p := range values {
			fe := findError(t, list, p)
			if fe.File != file || fe.Line != lines[p] || fe.Column != len(p[strings.LastIndexByte(p, '.')+1:])+3+2*strings.Count(p, ".") {
				t.Errorf("%s = %s: placed at %s, want line %d", p, c.value, fe.Pos(), lines[p])
			}
			want := "expected a string, got " + c.got + " (put it in quotes if it is meant as text)"
			if fe.Msg != want {
				t.Errorf("%s = %s: %q, want %q", p, c.value, fe.Msg, want)
			}
		}
		if len(list) != len(values) {
			t.Errorf("%s: %d errors for %d options:\n%s", c.value, len(list), len(values), (&Errors{List: list}).Error())
		}
		if msg := (&Errors{List: list}).Error(); len(c.value) > 3 && strings.Contains(msg, c.value) {
			t.Errorf("the value %s is quoted back:\n%s", c.value, msg)
		}
	}
	// Quoted, it is a string; and a string option the schema leaves for names takes a bare number.
	c := mustLoad(t, "escalation:\n  ladders_dir: \"5\"\ninstance: 42\nbootstrap:\n  org_name: 2024\nredis:\n  prefix: 7\n", nil)
	if c.Escalation.LaddersDir != "5" || c.Instance != "42" || c.Bootstrap.OrgName != "2024" || c.Redis.Prefix != "7" {
		t.Errorf("got ladders_dir %q, instance %q, org_name %q, prefix %q", c.Escalation.LaddersDir, c.Instance, c.Bootstrap.OrgName, c.Redis.Prefix)
	}
	c = mustLoad(t, "summarizer:\n  base_url: http://127.0.0.1:1/v1\n  api_key: 0123456789\n  model: 4\n", nil)
	if c.Summarizer.APIKey.Value() != "0123456789" || c.Summarizer.Model != "4" {
		t.Errorf("api_key %q (as written, leading zero kept), model %q", c.Summarizer.APIKey.Value(), c.Summarizer.Model)
	}
}

// TestAnyScalarOptionsAreStringOptions keeps the exceptions honest: each names a string option.
func TestAnyScalarOptionsAreStringOptions(t *testing.T) {
	t.Parallel()
	for p := range anyScalarOptions {
		i := slices.IndexFunc(leaves(), func(lf leaf) bool { return lf.path == p })
		if i < 0 {
			t.Errorf("anyScalarOptions lists %q, which is not an option", p)
			continue
		}
		if k := leaves()[i].kind; k != kindString && k != kindSecret {
			t.Errorf("anyScalarOptions lists %q, which is not a string option", p)
		}
	}
}
