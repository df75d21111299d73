package risk

import (
	"encoding/json"
	"regexp"
	"testing"
)

func TestLevelText(t *testing.T) {
	t.Parallel()
	for _, l := range []Level{Low, Medium, High, Critical} {
		b, err := l.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%d): %v", l, err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Fatalf("round trip of %s gave %v, %v", b, back, err)
		}
	}
	if l, err := ParseLevel(" HIGH "); err != nil || l != High {
		t.Fatalf(`ParseLevel(" HIGH ") = %v, %v`, l, err)
	}
	for _, s := range []string{"", "severe", "0", "lowish"} {
		if _, err := ParseLevel(s); err == nil {
			t.Errorf("ParseLevel(%q) accepted", s)
		}
	}
	for _, l := range []Level{0, 5, -1} {
		if _, err := l.MarshalText(); err == nil {
			t.Errorf("MarshalText(%d) accepted an invalid level", l)
		}
	}
	if got := Level(9).String(); got != "level(9)" {
		t.Errorf("String of invalid level = %q", got)
	}
	if !(Low < Medium && Medium < High && High < Critical) {
		t.Error("levels are not ordered")
	}
}

func TestAssessmentJSON(t *testing.T) {
	t.Parallel()
	a := Default().Derive(Input{Action: "deploy", Labels: map[string]string{"env": "prod"}})
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Level":"high","Reasons":["deploy","production_environment"],"Rules":["label.production"]}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	if b, _ := json.Marshal(Default().Derive(Input{Action: "x"})); string(b) != `{"Level":"low","Reasons":[],"Rules":[]}` {
		t.Fatalf("empty assessment json = %s", b)
	}
}

// reservedReasons lists codes that no built-in rule emits, each with why it
// exists; the test below keeps it honest.
func reservedReasons() map[Reason]string {
	return map[Reason]string{
		ReasonOrgPolicy: "reported by an organisation's policy floors (floor:action:… and floor:label:…), never by a built-in rule",
	}
}

func TestReasonsAreUsedOrReserved(t *testing.T) {
	t.Parallel()
	used := map[Reason]bool{}
	for _, r := range DefaultRules() {
		used[r.Reason] = true
	}
	for _, b := range DefaultBase() {
		if b.Reason != "" {
			used[b.Reason] = true
		}
	}
	reserved := reservedReasons()
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)
	seen := map[Reason]bool{}
	for _, r := range AllReasons() {
		if seen[r] {
			t.Errorf("reason %q listed twice", r)
		}
		seen[r] = true
		if !snake.MatchString(string(r)) {
			t.Errorf("reason %q is not snake_case", r)
		}
		if !KnownReason(r) {
			t.Errorf("KnownReason(%q) = false", r)
		}
		if !used[r] && reserved[r] == "" {
			t.Errorf("reason %q is neither used by a built-in rule nor documented as reserved", r)
		}
		if used[r] && reserved[r] != "" {
			t.Errorf("reason %q is used but still marked reserved", r)
		}
	}
	for r := range reserved {
		if !KnownReason(r) {
			t.Errorf("reserved reason %q is not a known reason", r)
		}
	}
	for _, r := range []Reason{"", "Recursive_Delete", "bogus"} {
		if KnownReason(r) {
			t.Errorf("KnownReason(%q) = true", r)
		}
	}
	all := AllReasons()
	all[0] = "mutated"
	if AllReasons()[0] == "mutated" {
		t.Error("AllReasons exposes its backing array")
	}
}
