package redact

import (
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	t.Parallel()
	good := "rules:\n  - name: acme_key\n    pattern: 'acme_[a-z0-9]{32}'\n    keywords: [acme_]\n"
	rules, err := ParseRules([]byte(good), "r.yaml")
	if err != nil || len(rules) != 1 || rules[0].Name != "acme_key" {
		t.Fatalf("ParseRules: %+v %v", rules, err)
	}
	r, err := New(Options{Custom: rules})
	if err != nil {
		t.Fatal(err)
	}
	secret := "acme_" + strings.Repeat("k3", 16)
	out, fs := r.Redact([]byte("k"), "curl -H 'X-Key: "+secret+"' https://api.acme.test")
	if strings.Contains(out, secret) || len(fs) != 1 || fs[0].Kind != "custom:acme_key" {
		t.Fatalf("custom rule did not redact: %q %+v", out, fs)
	}
	for name, bad := range map[string]string{
		"unknown key": "rules:\n  - name: x\n    pattern: 'x+'\n    colour: red\n",
		"bad regexp":  "rules:\n  - name: x\n    pattern: '(['\n",
		"empty match": "rules:\n  - name: x\n    pattern: 'a*'\n",
		"bad name":    "rules:\n  - name: 'no spaces'\n    pattern: 'x+'\n",
		"not yaml":    "rules: [",
		"wrong shape": "rules: {name: x}\n",
	} {
		if _, err := ParseRules([]byte(bad), "r.yaml"); err == nil || !strings.Contains(err.Error(), "r.yaml") {
			t.Errorf("%s: want an error naming the file, got %v", name, err)
		}
	}
	if rules, err := ParseRules(nil, "empty.yaml"); err != nil || rules != nil {
		t.Errorf("empty file: %v %v", rules, err)
	}
}
