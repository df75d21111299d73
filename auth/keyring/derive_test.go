package keyring

import (
	"bytes"
	"testing"
)

func TestDerive(t *testing.T) {
	t.Parallel()
	e1, _ := Generate()
	e2, _ := Generate()
	e2 = "v2" + e2[2:]
	k1, err := Parse([]string{e1})
	if err != nil {
		t.Fatal(err)
	}
	k12, err := Parse([]string{e1, e2})
	if err != nil {
		t.Fatal(err)
	}
	a := k1.Derive("redact fingerprint", "org-a")
	if len(a) != 32 {
		t.Fatalf("len %d", len(a))
	}
	if !bytes.Equal(a, k12.Derive("redact fingerprint", "org-a")) {
		t.Error("adding a newer key changed a derived key")
	}
	if bytes.Equal(a, k1.Derive("redact fingerprint", "org-b")) || bytes.Equal(a, k1.Derive("other", "org-a")) {
		t.Error("derived keys do not depend on context and purpose")
	}
	k2, _ := Parse([]string{e2})
	if bytes.Equal(a, k2.Derive("redact fingerprint", "org-a")) {
		t.Error("different keys derived the same key")
	}
}
