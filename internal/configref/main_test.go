package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ony-ai/ony/config"
)

// TestRun: -check refuses a stale table and names the fix, a run rewrites only the table (the text
// around the markers stays), and -check then passes. It works on a copy of the module's example in a
// temporary module root, found from a subdirectory as go generate would run it. (No t.Parallel:
// t.Chdir forbids it.)
func TestRun(t *testing.T) {
	example, err := os.ReadFile("../../configs/ony.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for name, data := range map[string]string{
		"go.mod":                   "module example.test/ony\n",
		"configs/ony.example.yaml": string(example),
		"docs/operations.md":       "# Ops\n\nbefore\n" + config.ReferenceBegin + "\n| `gone` | stale |\n" + config.ReferenceEnd + "\n\nafter\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "config"))

	if err := run(true); err == nil || !strings.Contains(err.Error(), "go generate ./config") {
		t.Fatalf("-check on a stale table: %v", err)
	}
	if err := run(false); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := config.Reference(example)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Ops\n\nbefore\n" + config.ReferenceBegin + "\n" + table + config.ReferenceEnd + "\n\nafter\n"
	if string(doc) != want {
		t.Errorf("rewritten doc:\n%s\nwant\n%s", doc, want)
	}
	if err := run(true); err != nil {
		t.Errorf("-check after a run: %v", err)
	}
}
