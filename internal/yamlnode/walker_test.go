package yamlnode

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// walk parses src and returns a walker whose reports are collected as "line:col path: msg".
func walk(t *testing.T, src string, max int) (*Walker, *yaml.Node, *[]string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	var got []string
	w := &Walker{Max: max, Input: "the file", Add: func(n *yaml.Node, path, msg string) {
		line, col := 0, 0
		if n != nil {
			line, col = n.Line, n.Column
		}
		got = append(got, fmt.Sprintf("%d:%d %s: %s", line, col, path, msg))
	}}
	return w, doc.Content[0], &got
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("reports:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMapping(t *testing.T) {
	w, root, got := walk(t, "b: 1\nnmae: x\na: 2\nb: 3\n<<: {a: 1}\n[x]: 1\n", 100)
	var keys []string
	ok := w.Mapping(root, "top", []string{"a", "b", "name"}, func(key string, k, v *yaml.Node) {
		keys = append(keys, key+"="+v.Value)
	})
	if !ok || !slices.Equal(keys, []string{"b=1", "a=2"}) {
		t.Errorf("Mapping = %v, keys %v; want true, [b=1 a=2]", ok, keys)
	}
	check(t, *got,
		`2:1 top.nmae: unknown key (did you mean "name"?); known keys: a, b, name`,
		"4:1 top.b: duplicate key (first on line 1)",
		"5:1 top: merge keys (<<) are not supported",
		"6:1 top: keys must be plain names, got a list",
	)
}

func TestMappingWording(t *testing.T) {
	w, root, got := walk(t, "b: 1\nnmae: x\nb: 3\n<<: {a: 1}\n\"odd key\": 1\nc: [1]\n", 100)
	w.Wording = Wording{
		Mapping:    "a mapping of options",
		Duplicate:  "duplicate key (first set on line %d)",
		Merge:      "merge keys (<<) are not supported; write the options out",
		MergeAtKey: true,
		KeyPath:    func(k string) string { return fmt.Sprintf("%q", k) },
		HideKnown:  true,
	}
	w.Mapping(root, "top", []string{"b", "c", "name"}, func(key string, _, v *yaml.Node) {
		if key == "c" {
			w.Mapping(v, "top.c", nil, nil)
		}
	})
	check(t, *got,
		`2:1 top."nmae": unknown key (did you mean "name"?)`,
		"3:1 top.b: duplicate key (first set on line 1)",
		"4:1 top.<<: merge keys (<<) are not supported; write the options out",
		`5:1 top."odd key": unknown key`,
		"6:4 top.c: expected a mapping of options, got a list",
	)
}

func TestMappingShapes(t *testing.T) {
	for _, tc := range []struct {
		src  string
		ok   bool
		want []string
	}{
		{"~", true, nil},
		{"[1]", false, []string{"1:1 : expected a mapping, got a list"}},
		{"x", false, []string{"1:1 : expected a mapping, got a string"}},
	} {
		w, root, got := walk(t, tc.src, 100)
		called := false
		ok := w.Mapping(root, "", nil, func(string, *yaml.Node, *yaml.Node) { called = true })
		if ok != tc.ok || called {
			t.Errorf("%q: Mapping = %v (called %v), want %v", tc.src, ok, called, tc.ok)
		}
		check(t, *got, tc.want...)
	}
}

func TestMappingTopLevelPath(t *testing.T) {
	w, root, got := walk(t, "xxxx: 1\n", 100)
	w.Mapping(root, "", []string{"y"}, func(string, *yaml.Node, *yaml.Node) {})
	check(t, *got, "1:1 xxxx: unknown key; known keys: y")
}

func TestEntries(t *testing.T) {
	src := "Env: 1\n' env': 2\nenv: 3\n~: 4\n"
	fold := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

	w, root, got := walk(t, src, 100)
	var seen []string
	w.Entries(root, "labels", nil, func(key, path string, k, v *yaml.Node) { seen = append(seen, path) })
	if want := []string{`labels["Env"]`, `labels[" env"]`, `labels["env"]`}; !slices.Equal(seen, want) {
		t.Errorf("exact keys: saw %q, want %q", seen, want)
	}
	check(t, *got, "4:1 labels: keys must be plain names, got null")

	w, root, got = walk(t, src, 100)
	seen = nil
	w.Entries(root, "labels", fold, func(key, path string, k, v *yaml.Node) { seen = append(seen, key) })
	if want := []string{"Env"}; !slices.Equal(seen, want) {
		t.Errorf("folded keys: saw %q, want %q", seen, want)
	}
	check(t, *got,
		`2:1 labels[" env"]: duplicate key (first on line 1)`,
		`3:1 labels["env"]: duplicate key (first on line 1)`,
		"4:1 labels: keys must be plain names, got null",
	)
}

func TestSeqAndStrings(t *testing.T) {
	w, root, got := walk(t, "a: [x, 404, ~, {b: 1}, &s y, *s]\nb: ~\nc: 1\n", 100)
	m := map[string]*yaml.Node{}
	w.Mapping(root, "", []string{"a", "b", "c"}, func(key string, _, v *yaml.Node) { m[key] = v })

	items, nodes := w.StrList(m["a"], "a")
	if !slices.Equal(items, []string{"x", "404", "y", "y"}) || len(nodes) != 4 || nodes[3].Kind != yaml.ScalarNode {
		t.Errorf("StrList = %q (%d nodes), want [x 404 y y] with resolved nodes", items, len(nodes))
	}
	if s := w.Seq(m["b"], "b"); s != nil {
		t.Errorf("Seq(null) = %v, want none", s)
	}
	if s := w.Seq(m["c"], "c"); s != nil {
		t.Errorf("Seq(1) = %v, want none", s)
	}
	check(t, *got,
		"1:13 a[2]: expected a string, got null",
		"1:16 a[3]: expected a string, got a mapping",
		"3:4 c: expected a list, got an integer",
	)
}

func TestBudget(t *testing.T) {
	w, root, got := walk(t, "[a, b, c, d, e]", 4)
	items, _ := w.StrList(root, "l")
	if !slices.Equal(items, []string{"a", "b", "c"}) || !w.Halted() {
		t.Errorf("StrList = %q, halted %v; want [a b c] and halted", items, w.Halted())
	}
	// Once halted, nothing is read and nothing more is reported.
	if s, ok := w.Str(root.Content[0], "x"); ok || s != "" {
		t.Errorf("Str after halting = %q, %v", s, ok)
	}
	if w.Mapping(root, "x", nil, nil) {
		t.Error("Mapping after halting = true")
	}
	check(t, *got, "1:11 : the file is too large or nests too many aliases (more than 4 values)")
}

func TestBudgetFollowsAliases(t *testing.T) {
	// Each level doubles the values reached through aliases: 2^20 strings from 21 lines.
	src := "defs:\n  - &l0 [x, x]\n"
	for i := 1; i < 20; i++ {
		src += fmt.Sprintf("  - &l%d [*l%d, *l%d]\n", i, i-1, i-1)
	}
	src += "top: *l19\n"
	w, root, got := walk(t, src, 1000)
	var walkList func(n *yaml.Node)
	walkList = func(n *yaml.Node) {
		for _, item := range w.Seq(n, "") {
			if w.Resolve(item).Kind == yaml.SequenceNode {
				walkList(item)
			} else {
				w.Str(item, "")
			}
		}
	}
	w.Mapping(root, "", []string{"defs", "top"}, func(key string, _, v *yaml.Node) {
		if key == "top" {
			walkList(v)
		}
	})
	if !w.Halted() || len(*got) != 1 || !strings.Contains((*got)[0], "more than 1000 values") {
		t.Errorf("halted %v with reports %q; want halted after one report", w.Halted(), *got)
	}
}

func TestHaltFromCaller(t *testing.T) {
	w, root, got := walk(t, "[a, b]", 100)
	w.Halt()
	if items, _ := w.StrList(root, "l"); items != nil {
		t.Errorf("StrList after Halt = %q", items)
	}
	check(t, *got)
}

func TestResolve(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: &x 1\nb: *x\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var w Walker
	alias := doc.Content[0].Content[3]
	if n := w.Resolve(alias); n.Kind != yaml.ScalarNode || n.Value != "1" {
		t.Errorf("Resolve = %v %q, want the scalar 1", n.Kind, n.Value)
	}
	dangling := &yaml.Node{Kind: yaml.AliasNode}
	if n := w.Resolve(dangling); n != dangling || !IsNull(n) {
		t.Error("an unresolved alias should stay as it is and read as null")
	}
}

func TestDescribeValue(t *testing.T) {
	for src, want := range map[string]string{
		"yes":                   `"yes"`,
		"~":                     "null",
		"[1]":                   "a list",
		strings.Repeat("x", 41): "a string",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		if got := DescribeValue(doc.Content[0]); got != want {
			t.Errorf("DescribeValue(%q) = %s, want %s", src, got, want)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"a: 1\nb: [\n", 2, 0, "invalid YAML: did not find expected node content"},
		{"a: 1\nb: \x01\n", 2, 4, "invalid YAML: control characters are not allowed"},
		{"a: 1\nbé: \xff\n", 2, 5, "invalid YAML: invalid leading UTF-8 octet"},
	} {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(tc.src), &doc)
		if err == nil {
			t.Fatalf("%q: no error", tc.src)
		}
		line, col, msg := SyntaxError(err, []byte(tc.src))
		if line != tc.line || col != tc.col || msg != tc.msg {
			t.Errorf("%q: SyntaxError = %d:%d %q, want %d:%d %q", tc.src, line, col, msg, tc.line, tc.col, tc.msg)
		}
	}
}

func TestSyntaxErrorUnplaced(t *testing.T) {
	var doc yaml.Node
	src := []byte("a: *nope\n")
	err := yaml.Unmarshal(src, &doc)
	if err == nil {
		t.Fatal("no error")
	}
	want := "invalid YAML: unknown anchor 'nope' referenced"
	if line, col, msg := SyntaxError(err, src); line != 1 || col != 1 || msg != want {
		t.Errorf("SyntaxError = %d:%d %q, want 1:1 %q", line, col, msg, want)
	}
	if line, col, msg := SyntaxError(err, nil); line != 0 || col != 0 || msg != want {
		t.Errorf("SyntaxError without data = %d:%d %q, want 0:0 %q", line, col, msg, want)
	}
}
