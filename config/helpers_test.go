package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// envMap adapts a map to the getenv signature Load takes.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeTemp writes content into a fresh directory and returns the file path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes yaml unless it is empty, in which case no file is used.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	if yaml == "" {
		return ""
	}
	return writeTemp(t, "ony.yaml", yaml)
}

func mustLoad(t *testing.T, yaml string, env map[string]string) *Config {
	t.Helper()
	c, err := Load(writeConfig(t, yaml), envMap(env))
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v", err)
	}
	return c
}

// loadErrors returns the problems Load reports, failing if it reports none.
func loadErrors(t *testing.T, yaml string, env map[string]string) (path string, list []yamlnode.Diagnostic) {
	t.Helper()
	path = writeConfig(t, yaml)
	c, err := Load(path, envMap(env))
	if err == nil {
		t.Fatalf("Load succeeded, want an error")
	}
	if c != nil {
		t.Errorf("Load returned a config together with an error")
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want *Errors", err)
	}
	return path, errs.List
}

// findError returns the single error for path, failing if there is not exactly one.
func findError(t *testing.T, list []yamlnode.Diagnostic, path string) yamlnode.Diagnostic {
	t.Helper()
	var found []yamlnode.Diagnostic
	for _, fe := range list {
		if fe.Path == path {
			found = append(found, fe)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one error for %q, got %d in:\n%s", path, len(found), (&Errors{List: list}).Error())
	}
	return found[0]
}

func ptr[T any](v T) *T { return &v }

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
