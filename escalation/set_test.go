package escalation

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func lad(name string, order int, def bool, m Match) *Ladder {
	return &Ladder{Name: name, Order: order, Default: def, Match: m, Origin: "test", End: EndExpire,
		Steps: []Step{{Channels: []string{"console"}, Targets: []Target{{TargetRole, "admin"}}, Wait: 1}}}
}

func names(ls []*Ladder) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

func TestNewSetOrder(t *testing.T) {
	t.Parallel()
	in := []*Ladder{
		lad("zeta", 100, false, Match{}),
		lad("fallback", 1, true, Match{}), // the default goes last whatever its order
		lad("beta", 10, false, Match{}),
		lad("alpha", 100, false, Match{}),
		lad("gamma", 0, false, Match{}),
	}
	s, err := NewSet(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gamma", "beta", "alpha", "zeta", "fallback"}
	if got := names(s.Ladders()); !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if in[0].Name != "zeta" {
		t.Error("NewSet reordered its argument")
	}
	got := s.Ladders()
	got[0] = nil
	if s.Ladders()[0] == nil {
		t.Error("Ladders returns the set's own slice")
	}
	if s.Get("beta") != in[2] || s.Get("nope") != nil || s.Get("builtin") != nil {
		t.Error("Get")
	}
}

func TestNewSetErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   []*Ladder
		want string
	}{
		{"duplicate name", []*Ladder{lad("a", 1, false, Match{}), lad("a", 2, false, Match{})}, `ladder "a" is defined twice (test and test)`},
		{"two defaults", []*Ladder{lad("a", 1, true, Match{}), lad("b", 2, true, Match{})}, `ladders "a" (test) and "b" (test) are both default`},
		{"nil", []*Ladder{nil}, "nil ladder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewSet(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if s, err := NewSet(nil); err != nil || len(s.Ladders()) != 0 {
		t.Errorf("NewSet(nil) = %v, %v", s, err)
	}
}

func TestSetWith(t *testing.T) {
	t.Parallel()
	base, err := NewSet([]*Ladder{lad("a", 10, false, Match{}), lad("b", 20, false, Match{}), lad("def", 100, true, Match{})})
	if err != nil {
		t.Fatal(err)
	}
	newB := lad("b", 5, false, Match{Risk: []string{"high"}})
	newB.Origin, newB.Version = "api", 3
	c := lad("c", 15, false, Match{})
	s, err := base.With([]*Ladder{newB, c})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(s.Ladders()), []string{"b", "a", "c", "def"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if s.Get("b") != newB {
		t.Error("b was not replaced")
	}
	// base is unchanged.
	if got, want := names(base.Ladders()), []string{"a", "b", "def"}; !reflect.DeepEqual(got, want) || base.Get("b").Origin != "test" || base.Get("c") != nil {
		t.Errorf("base changed: %v", got)
	}

	// Replacing the default with a non-default one, or adding a second default.
	if s, err := base.With([]*Ladder{lad("def", 1, false, Match{})}); err != nil || s.Get("def").Default {
		t.Errorf("replace default: %v", err)
	}
	// An organization's own default takes the place of the instance's; two of its own are refused.
	if s, err := base.With([]*Ladder{lad("other", 1, true, Match{})}); err != nil || s.Get("def") != nil || !s.Get("other").Default {
		t.Errorf("own default: %v", err)
	}
	if _, err := base.With([]*Ladder{lad("o1", 1, true, Match{}), lad("o2", 1, true, Match{})}); err == nil || !strings.Contains(err.Error(), "both default") {
		t.Errorf("two own defaults: %v", err)
	}
	if s, err := base.With([]*Ladder{lad("def", 1, true, Match{})}); err != nil || s.Get("def").Order != 1 {
		t.Errorf("replace default by a default: %v", err)
	}
	if _, err := base.With([]*Ladder{lad("x", 1, false, Match{}), lad("x", 2, false, Match{})}); err == nil {
		t.Error("the same override twice: no error")
	}
	if s, err := base.With(nil); err != nil || !reflect.DeepEqual(names(s.Ladders()), names(base.Ladders())) {
		t.Errorf("With(nil): %v", err)
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	prod := lad("prod", 10, false, Match{Risk: []string{"high", "critical"}, Labels: map[string]string{"env": "prod*"}})
	deploys := lad("deploys", 20, false, Match{Actions: []string{"deploy.*", "release"}})
	catchAll := lad("anything", 90, false, Match{})
	def := lad("default", 1, true, Match{})

	s, _ := NewSet([]*Ladder{def, deploys, prod})
	for _, tt := range []struct {
		risk, action string
		labels       map[string]string
		want         string
	}{
		{"high", "deploy.web", map[string]string{"env": "production"}, "prod"}, // order 10 before 20
		{"HIGH ", "deploy.web", map[string]string{"env": "prod"}, "prod"},      // risk compares without case
		{"medium", "deploy.web", map[string]string{"env": "prod"}, "deploys"},
		{"high", "deploy.web", map[string]string{"env": "staging"}, "deploys"},
		{"high", "deploy.web", map[string]string{"ENV": "prod"}, "deploys"}, // label keys are exact
		{"high", "deploy.web.eu", nil, "deploys"},                           // path.Match's * matches dots too
		{"low", "release", nil, "deploys"},
		{"low", "releases", nil, "default"},
		{"low", "shell.exec", nil, "default"},
	} {
		if got := s.Select(tt.risk, tt.action, tt.labels); got.Name != tt.want {
			t.Errorf("Select(%q, %q, %v) = %s, want %s", tt.risk, tt.action, tt.labels, got.Name, tt.want)
		}
	}

	// Without a default, Builtin; an empty match catches everything before the default.
	s2, _ := NewSet([]*Ladder{prod})
	if got := s2.Select("low", "x", nil); got.Origin != "builtin" || got.Name != "builtin" {
		t.Errorf("no match, no default: %+v", got)
	}
	s3, _ := NewSet([]*Ladder{def, catchAll, prod})
	if got := s3.Select("low", "x", nil); got != catchAll {
		t.Errorf("catch-all: %s", got.Name)
	}
	empty, _ := NewSet(nil)
	if got := empty.Select("", "", nil); got == nil || got.Name != "builtin" {
		t.Errorf("empty set: %v", got)
	}
}

func TestMatchesAndWhy(t *testing.T) {
	t.Parallel()
	l := lad("x", 1, false, Match{Risk: []string{"high", "critical"}, Actions: []string{"db.*"}, Labels: map[string]string{"env": "prod*", "team": "?ay*"}})
	ok := map[string]string{"env": "prod-eu", "team": "payments", "extra": "ignored"}
	for _, tt := range []struct {
		risk, action string
		labels       map[string]string
		ok           bool
		why          string
	}{
		{"critical", "db.migrate", ok, true, "risk is critical (wanted high or critical); action db.migrate matches db.*; label env=prod-eu matches prod*; label team=payments matches ?ay*"},
		{"medium", "db.migrate", ok, false, "risk is medium (wanted high or critical)"},
		{"", "db.migrate", ok, false, `risk is "" (wanted high or critical)`},
		{"high", "deploy.web", ok, false, "action deploy.web matches none of db.*"},
		{"high", "db.migrate", map[string]string{"team": "payments"}, false, "label env is missing (wanted prod*)"},
		{"high", "db.migrate", map[string]string{"env": "dev", "team": "payments"}, false, "label env=dev does not match prod*"},
	} {
		if got := l.Matches(tt.risk, tt.action, tt.labels); got != tt.ok {
			t.Errorf("Matches(%q, %q, %v) = %v", tt.risk, tt.action, tt.labels, got)
		}
		gotOK, why := l.Why(tt.risk, tt.action, tt.labels)
		if gotOK != tt.ok || strings.Join(why, "; ") != tt.why {
			t.Errorf("Why(%q, %q, %v) = %v, %q; want %q", tt.risk, tt.action, tt.labels, gotOK, why, tt.why)
		}
	}
	if ok, why := lad("y", 1, false, Match{}).Why("low", "a", nil); !ok || len(why) != 1 || !strings.Contains(why[0], "matches every handoff") {
		t.Errorf("empty match: %v %v", ok, why)
	}
}

// TestExampleSelection checks that the example ladders pick what their comments promise.
func TestExampleSelection(t *testing.T) {
	t.Parallel()
	ls, err := LoadDir(filepath.Join("..", "configs", "ladders"), testKinds)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(ls)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(s.Ladders()), []string{"critical-production", "business-hours", "default"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	for _, tt := range []struct {
		risk, action string
		labels       map[string]string
		want         string
	}{
		{"critical", "db.migrate", map[string]string{"env": "prod"}, "critical-production"},
		{"high", "deploy.web", map[string]string{"env": "production"}, "critical-production"},
		{"high", "deploy.web", map[string]string{"env": "staging"}, "default"},
		{"medium", "deploy.web", map[string]string{"env": "prod"}, "business-hours"},
		{"low", "deploy.api", nil, "business-hours"},
		{"medium", "shell.exec", nil, "default"},
	} {
		if got := s.Select(tt.risk, tt.action, tt.labels); got.Name != tt.want {
			t.Errorf("Select(%q, %q, %v) = %s, want %s", tt.risk, tt.action, tt.labels, got.Name, tt.want)
		}
	}
}

// TestBuiltinChannels: the configured chat channels join the console in the built-in ladder, for the
// set and for an organization's set built over it; a set with a default ladder never uses it.
func TestBuiltinChannels(t *testing.T) {
	t.Parallel()
	base, err := NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	set := base.WithBuiltinChannels("slack", "telegram")
	if got := base.Select("low", "x", nil).Steps[0].Channels; !slices.Equal(got, []string{"console"}) {
		t.Errorf("the original set changed: %v", got)
	}
	if got := set.Select("low", "x", nil).Steps[0].Channels; !slices.Equal(got, []string{"console", "slack", "telegram"}) {
		t.Errorf("built-in channels %v", got)
	}
	own, err := set.With([]*Ladder{lad("narrow", 1, false, Match{Actions: []string{"db.*"}})})
	if err != nil {
		t.Fatal(err)
	}
	if got := own.Select("low", "deploy", nil); got.Name != "builtin" || len(got.Steps[0].Channels) != 3 {
		t.Errorf("an org's set falls back to %s with %v", got.Name, got.Steps[0].Channels)
	}
}
