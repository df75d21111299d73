package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as the config file: Load must not panic, and
// every reported problem must say where it is.
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile(examplePath); err == nil {
		f.Add(example)
	}
	for _, seed := range []string{
		"",
		"listen: [1]\n",
		"databse:\n  url: x\n",
		"a: &a [*a]\n",
		"log: &l {level: info}\nhandoffs: *l\n",
		"? [a]\n: b\n",
		"keyring: {keys: [v1:AAAA, ~, {a: b}]}\n",
		"---\n---\n",
		"log:\n\tlevel: info\n",
		"auth: {secure_cookies: !!binary aGk=}\n",
		"jobs: {workers: 0x7fffffffffffffff}\n",
		"oidc: {issuer: 'https://x', client_id: c, roles: {a: admin, ? [b] : c, d: [e], a: member, &r f: *r}}\n", // issue 13, oidc
	} {
		f.Add([]byte(seed))
	}
	// One file per worker process is enough because inputs run one at a time,
	// and it avoids a directory per input, which dominated the run time.
	path := filepath.Join(f.TempDir(), "ony.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, nil)
		if err == nil {
			if _, rerr := c.Redacted(); rerr != nil {
				t.Fatalf("Redacted: %v", rerr)
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("error %T without problems: %v", err, err)
		}
		for _, fe := range errs.List {
			if fe.Path == "" && fe.Pos() == "" {
				t.Fatalf("problem without Path or Pos: %+v", fe)
			}
		}
	})
}
