package escalation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadPaths reads a directory and loose files as one collection: names must be unique across
// them, and a path that is not there is reported with the others' mistakes rather than alone.
func TestLoadPaths(t *testing.T) {
	t.Parallel()
	ladder := func(name string) string {
		return "name: " + name + "\nmatch: {risk: [high]}\nsteps:\n  - channels: [console]\n    targets: [role:admin]\n    wait: 5m\n"
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(ladder("a")), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(t.TempDir(), "b.yaml")
	if err := os.WriteFile(loose, []byte(ladder("b")), 0o600); err != nil {
		t.Fatal(err)
	}
	ls, err := LoadPaths([]string{dir, loose}, testKinds)
	if err != nil || strings.Join(names(ls), ",") != "a,b" {
		t.Fatalf("LoadPaths(dir, file) = %v, %v; want a and b", names(ls), err)
	}

	missing := filepath.Join(dir, "nope.yaml")
	ls, err = LoadPaths([]string{missing, dir}, testKinds)
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != missing {
		t.Errorf("a missing path: %v, want its *os.PathError", err)
	}
	if strings.Join(names(ls), ",") != "a" {
		t.Errorf("a missing path: loaded %v, want the directory's ladder still", names(ls))
	}
}

// TestFormatExplanation checks the lines before the timeline: labels sorted, each ladder ordered
// before the chosen one skipped with its reason, the default one not listed as skipped.
func TestFormatExplanation(t *testing.T) {
	t.Parallel()
	set, err := NewSet([]*Ladder{
		lad("prod", 10, false, Match{Labels: map[string]string{"env": "prod"}}),
		lad("critical", 20, false, Match{Risk: []string{"critical"}}),
		lad("fallback", 30, true, Match{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		q      Query
		source string
		want   []string
	}{
		{"the default", Query{Risk: "high", Action: "deploy", Labels: map[string]string{"z": "1", "env": "dev"}, Timeout: time.Hour},
			"ladders/", []string{
				"handoff   risk high, action deploy, labels env=dev,z=1, timeout 1h\n",
				"ladders   prod, critical, fallback (from ladders/)\n",
				"skipped   prod: ", "skipped   critical: ",
				"selected  fallback: the default ladder, since no other matches\n\nladder fallback (test",
			}},
		{"a match", Query{Risk: "critical", Action: "db.migrate", Timeout: 90 * time.Minute}, "", []string{
			"handoff   risk critical, action db.migrate, timeout 1h30m\n",
			"ladders   none configured: the built-in ladder applies\n",
			"skipped   prod: ", "selected  critical: ",
		}},
	} {
		var b strings.Builder
		FormatExplanation(&b, set, tc.q, tc.source, testKinds)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: the explanation lacks %q:\n%s", tc.name, w, b.String())
			}
		}
		if strings.Contains(b.String(), "skipped   fallback") {
			t.Errorf("%s: the default ladder is listed as skipped:\n%s", tc.name, b.String())
		}
	}
}
