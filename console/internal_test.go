package console

import (
	"strings"
	"testing"

	"github.com/ony-ai/ony/handoff"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/audit?type=x":      "/console/audit?type=x",
		"/console/handoffs/abc":      "/console/handoffs/abc",
		"":                           "/console/inbox",
		"/":                          "/console/inbox",
		"//evil.example/console/":    "/console/inbox",
		"https://evil.example/":      "/console/inbox",
		"/console/\\evil":            "/console/inbox",
		"/v1/handoffs":               "/console/inbox",
		"/console/x\r\nSet-Cookie:x": "/console/inbox",
		"javascript:alert(1)":        "/console/inbox",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/x", "//a", "/console/../..//x", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		if !strings.HasPrefix(got, "/console/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", s, got)
		}
	})
}

func TestRenderPayload(t *testing.T) {
	t.Parallel()
	if renderPayload(handoff.Payload{}) != nil {
		t.Fatal("no payload rendered something")
	}
	v := renderPayload(handoff.Payload{Kind: "diff", Content: "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n"})
	var classes []string
	for _, l := range v.Lines {
		classes = append(classes, l.Class)
	}
	if got := strings.Join(classes, ","); got != "meta,meta,hunk,del,add," {
		t.Errorf("classes %s", got)
	}
	if v := renderPayload(handoff.Payload{Kind: "log", Content: "+a\n-b"}); v.Lines[0].Class != "" || v.Lines[1].Class != "" {
		t.Error("a log's lines were coloured as a diff")
	}
}
