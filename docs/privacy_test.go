// Package docs holds Ony's documentation; its tests keep the pages that make promises true to the code.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testFuncs returns the names of every top-level Test function in the repository's test files.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				names[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var (
	quoted   = regexp.MustCompile(`^\| "([^"]+)" \|`)
	testName = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
)

// TestPrivacyDocNamesExistingTests: every promise docs/privacy.md lists is quoted word for word from
// the privacy page (privacy-page.txt), names at least one test, and every test it names exists, so a
// renamed or deleted test cannot leave a promise unguarded without this failing.
func TestPrivacyDocNamesExistingTests(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("privacy.md")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("privacy-page.txt")
	if err != nil {
		t.Fatal(err)
	}
	funcs := testFuncs(t)
	rows := 0
	for line := range strings.SplitSeq(string(doc), "\n") {
		m := quoted.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		if !strings.Contains(string(page), m[1]) {
			t.Errorf("privacy.md quotes %q, which is not on the privacy page", m[1])
		}
		cells := strings.Split(line, "|")
		names := testName.FindAllStringSubmatch(cells[len(cells)-2], -1)
		if len(names) == 0 {
			t.Errorf("the promise %q names no test", m[1])
		}
		for _, n := range names {
			if !funcs[n[1]] {
				t.Errorf("the promise %q names %s, which no test file defines", m[1], n[1])
			}
		}
	}
	// The page's promises, counted when this page was written: a row dropped by mistake fails here.
	if rows < 26 {
		t.Errorf("privacy.md lists %d promises, want at least 26", rows)
	}
}

// TestOperationsDocCoversBackupsAndErasure keeps the one privacy promise that is a procedure, not
// code ("Factor them into an erasure request"): the operations guide says how backups are encrypted
// and how an erasure reaches them.
func TestOperationsDocCoversBackupsAndErasure(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, after, ok := strings.Cut(doc, "\n### Backups and erasure\n")
	if !ok {
		t.Fatal(`operations.md has no "### Backups and erasure" section`)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	for _, want := range []string{"ony admin erase-org", "ony audit export", "Expire backups", "Erase again after a restore"} {
		if !strings.Contains(section, want) {
			t.Errorf("the Backups and erasure section does not mention %q", want)
		}
	}
	if !strings.Contains(doc, "**Encrypt the dumps.**") {
		t.Error("operations.md no longer tells operators to encrypt the dumps")
	}
}
