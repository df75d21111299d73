package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	t.Parallel()
	environ := []string{
		"ONY_DATABSE_URL=postgres://u:CANARY@h/db", // a letter left out
		"ONY_LOG_LEVL=debug",
		"ONY_REDSI_URL=redis://CANARY", // two letters swapped
		"ONY_LISTEN_FILE=/run/x",       // only secrets have a _FILE form
		"ONY_HOOK_TIMOUT=5m",
		"ONY_DATABSE_URL=again", // listed once
		"ONY_x y=1",             // names may hold anything
		// known: the schema, secrets' _FILE forms, and the names read outside the schema
		"ONY_DATABASE_URL=postgres://", "ONY_DATABASE_URL_FILE=/run/db", "ONY_KEYRING_KEYS_FILE=/k",
		"ONY_ESCALATION_LIMITS_CALLS_PER_USER_HOUR=3", "ONY_CONFIG=/etc/ony.yaml", "ONY_URL=http://x",
		"ONY_TOKEN=t", "ONY_TOKEN_FILE=/t", "ONY_CLIENT_CONFIG=/c", "ONY_HOOK_POLICY=/p",
		"ONY_TEST_POSTGRES_URL=postgres://", "ONY_TEST_REDIS_URL=redis://",
		// not Ony's
		"PATH=/bin", "ONYX_URL=1", "ony_database_url=1", "NOEQUALS",
	}
	got := UnknownEnv(environ)
	want := []UnknownVar{
		{"ONY_DATABSE_URL", "ONY_DATABASE_URL"},
		{"ONY_HOOK_TIMOUT", "ONY_HOOK_TIMEOUT"},
		{"ONY_LISTEN_FILE", "ONY_LISTEN"},
		{"ONY_LOG_LEVL", "ONY_LOG_LEVEL"},
		{"ONY_REDSI_URL", "ONY_REDIS_URL"},
		{`"ONY_x y"`, "ONY_URL"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("UnknownEnv:\n got %v\nwant %v", got, want)
	}
	errs := UnknownEnvErrors(environ)
	if errs == nil || len(errs.List) != len(want) {
		t.Fatalf("UnknownEnvErrors = %v", errs)
	}
	if msg := errs.Error(); !strings.Contains(msg, "ONY_DATABSE_URL: unknown variable, Ony ignores it (nearest known name: ONY_DATABASE_URL)") ||
		strings.Contains(msg, "CANARY") || strings.Contains(msg, "debug") {
		t.Errorf("errors:\n%s", msg)
	}
	if UnknownEnvErrors([]string{"ONY_LISTEN=:80", "HOME=/root"}) != nil {
		t.Error("known variables reported")
	}
}

// TestKnownEnvFollowsSchema: every option's variable is known without a list to keep, and so is
// NAME_FILE exactly for secrets.
func TestKnownEnvFollowsSchema(t *testing.T) {
	t.Parallel()
	known := KnownEnv()
	for _, lf := range leaves() {
		if _, ok := slices.BinarySearch(known, lf.env); !ok {
			t.Errorf("%s (%s) is not known", lf.env, lf.path)
		}
		_, file := slices.BinarySearch(known, lf.env+"_FILE")
		if file != lf.secret() {
			t.Errorf("%s_FILE known = %t, but %s is secret = %t", lf.env, file, lf.path, lf.secret())
		}
	}
}

// onyVarRE finds a variable's name at the start of a string literal: os.Getenv("ONY_URL"), and
// messages such as "ONY_TOKEN_FILE: %w". Text that merely contains ONY_ (a prompt fence) is not a name.
var onyVarRE = regexp.MustCompile(`^ONY_[A-Z0-9_]*[A-Z0-9]`)

// TestKnownEnvCoversSource reads every non-test Go file of the module: each ONY_ name a string
// literal starts with (the way Ony reads a variable) must be known, or a correct variable would be reported as a
// typo; and each name known outside the schema must still be read somewhere, or the list has gone
// stale and would hide a typo.
func TestKnownEnvCoversSource(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from config/: %v", err)
	}
	known := KnownEnv()
	used := map[string][]string{} // name → files
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, name := range onyVarRE.FindAllString(s, -1) {
				used[name] = append(used[name], fset.Position(lit.Pos()).String())
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d Go files; the walk is not seeing the module", files)
	}
	for name, at := range used {
		if _, ok := slices.BinarySearch(known, name); !ok {
			t.Errorf("%s is read at %s but KnownEnv lacks it: add it to otherEnv (or to the schema)", name, at[0])
		}
	}
	for _, name := range otherEnv {
		if len(used[name]) == 0 {
			t.Errorf("otherEnv lists %s, which no Go file reads any more", name)
		}
	}
}
