package yamlnode

import (
	"encoding/json"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestDiagnosticFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d         Diagnostic
		pos, want string
	}{
		{Diagnostic{File: "a.yaml", Line: 3, Column: 5, Path: "steps[0]", Msg: "bad"}, "a.yaml:3:5", "a.yaml:3:5: steps[0]: bad"},
		{Diagnostic{File: "a.yaml", Line: 3, Msg: "invalid YAML: x"}, "a.yaml:3", "a.yaml:3: invalid YAML: x"},
		{Diagnostic{File: "a.yaml", Msg: "too large"}, "a.yaml", "a.yaml: too large"},
		{Diagnostic{Line: 1, Column: 2, Msg: "m"}, "1:2", "1:2: m"},
		{Diagnostic{File: "ONY_LOG_LEVEL", Path: "log.level", Msg: "m"}, "ONY_LOG_LEVEL", "ONY_LOG_LEVEL: log.level: m"},
		{Diagnostic{Path: "jobs.workers", Msg: "m"}, "", "jobs.workers: m"},
		// A column without a line is meaningless and left out.
		{Diagnostic{File: "a", Column: 4, Msg: "m"}, "a", "a: m"},
	} {
		if got := tc.d.Pos(); got != tc.pos {
			t.Errorf("%+v: Pos = %q, want %q", tc.d, got, tc.pos)
		}
		if got := tc.d.Error(); got != tc.want {
			t.Errorf("%+v: Error = %q, want %q", tc.d, got, tc.want)
		}
	}
	ds := &Diagnostics{List: []Diagnostic{{File: "a", Line: 1, Column: 1, Msg: "x"}, {File: "a", Line: 2, Msg: "y"}}}
	if got := ds.Error(); got != "a:1:1: x\na:2: y" {
		t.Errorf("Diagnostics.Error() = %q", got)
	}
}

// The ladder API returns diagnostics as JSON; the field names and omissions are a public contract.
func TestDiagnosticJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal([]Diagnostic{
		{File: "prod.yaml", Line: 3, Column: 25, Path: "steps[0].channels[1]", Msg: "unknown channel"},
		{File: "prod.yaml", Line: 2, Msg: "invalid YAML: x"},
		{Msg: "m"},
	})
	want := `[{"file":"prod.yaml","line":3,"column":25,"path":"steps[0].channels[1]","message":"unknown channel"},` +
		`{"file":"prod.yaml","line":2,"message":"invalid YAML: x"},{"message":"m"}]`
	if err != nil || string(b) != want {
		t.Errorf("JSON = %s (%v), want %s", b, err, want)
	}
}

func TestAt(t *testing.T) {
	t.Parallel()
	n := &yaml.Node{Line: 4, Column: 7}
	if got, want := At("f", n, "p", "m"), (Diagnostic{File: "f", Line: 4, Column: 7, Path: "p", Msg: "m"}); got != want {
		t.Errorf("At = %+v, want %+v", got, want)
	}
	if got, want := At("f", nil, "", "m"), (Diagnostic{File: "f", Msg: "m"}); got != want {
		t.Errorf("At(nil) = %+v, want %+v", got, want)
	}
}

func TestSort(t *testing.T) {
	t.Parallel()
	list := []Diagnostic{
		{File: "b", Line: 2, Msg: "b2"},
		{File: "a", Line: 3, Column: 2, Msg: "a3:2"},
		{File: "a", Line: 3, Column: 1, Msg: "a3:1 first"},
		{File: "b", Msg: "b whole"},
		{File: "a", Line: 3, Column: 1, Msg: "a3:1 second"},
	}
	msgs := func(l []Diagnostic) []string {
		var out []string
		for _, d := range l {
			out = append(out, d.Msg)
		}
		return out
	}
	byName := slices.Clone(list)
	Sort(byName, nil)
	if got, want := msgs(byName), []string{"a3:1 first", "a3:1 second", "a3:2", "b whole", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Sort by name = %q, want %q", got, want)
	}
	byRank := slices.Clone(list)
	Sort(byRank, map[string]int{"b": 0, "a": 1})
	if got, want := msgs(byRank), []string{"b whole", "b2", "a3:1 first", "a3:1 second", "a3:2"}; !slices.Equal(got, want) {
		t.Errorf("Sort by rank = %q, want %q", got, want)
	}
}
