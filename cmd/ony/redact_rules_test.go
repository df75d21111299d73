package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactCustomRules: users try their own detectors with --rules before putting them in config.
func TestRedactCustomRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - name: acme_key\n    pattern: 'acme_[a-z0-9]{32}'\n    keywords: [acme_]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "acme_" + strings.Repeat("q7", 16)
	var out, errb bytes.Buffer
	if err := cmdRedact([]string{"--rules", rules}, strings.NewReader("key="+secret+" and more\n"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secret) || !strings.Contains(out.String(), "[REDACTED:custom:acme_key:") {
		t.Fatalf("output %q", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: x\n    pattern: '(['\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := cmdRedact([]string{"--rules", bad}, strings.NewReader("x"), &out, &errb)
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "bad.yaml") {
		t.Fatalf("bad rules file: %v", err)
	}
}
