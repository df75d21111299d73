package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGist(t *testing.T) {
	summary := "Deploy the billing service.\nI exported GITHUB_TOKEN=" + ghTok + " and used postgres://app:s3cretP4ss@db/x to migrate; " +
		strings.Repeat("then I waited for the rollout to finish. ", 20)
	for _, max := range []int{0, 20, 40, 80, 160, 1000} {
		g := Gist(Default(), testKey, "shell.exec", "high", "Rotate key "+ghTok, summary, max)
		for _, secret := range []string{ghTok, "s3cretP4ss", ghTok[:20]} {
			if strings.Contains(g, secret) {
				t.Errorf("max %d: gist holds a secret: %q", max, g)
			}
		}
		if n := utf8.RuneCountInString(g); max > 0 && n > max {
			t.Errorf("max %d: gist has %d runes: %q", max, n, g)
		}
		if strings.ContainsAny(g, "\n\r\t") {
			t.Errorf("max %d: gist has control characters: %q", max, g)
		}
		if max >= 80 && !strings.HasPrefix(g, "[high] shell.exec: Rotate key [REDACTED:github_token:") {
			t.Errorf("max %d: header: %q", max, g)
		}
		if max > 0 && max < 1000 && !strings.HasSuffix(g, "…") {
			t.Errorf("max %d: cut without an ellipsis: %q", max, g)
		}
		if strings.Count(g, "[REDACTED:") != len(markers(g)) {
			t.Errorf("max %d: a marker was split: %q", max, g)
		}
	}
}

func TestGistWordBoundary(t *testing.T) {
	g := Gist(nil, testKey, "deploy", "low", "", "alpha beta gamma delta epsilon zeta eta theta", 30)
	if g != "[low] deploy — alpha beta…" && !strings.HasSuffix(g, " gamma…") {
		t.Errorf("%q", g)
	}
	if !strings.HasPrefix(g, "[low] deploy — alpha") || strings.Contains(g, "gam…") {
		t.Errorf("not cut on a word boundary: %q", g)
	}
}

func TestGistJoinedFieldsChecked(t *testing.T) {
	// Neither field alone is an assignment; the header joins them into one.
	g := Gist(Default(), testKey, "db_password", "", "Wq8zL2pVx9mK", "", 200)
	if strings.Contains(g, "Wq8zL2pVx9mK") {
		t.Errorf("%q", g)
	}
}

func TestGistStripsControls(t *testing.T) {
	g := Gist(Default(), testKey, "x\u202eevil", "low", "a\x00b\tc", "line1\r\nline2", 0)
	if g != "[low] x evil: a b c — line1 line2" {
		t.Errorf("%q", g)
	}
}
