package server_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/internal/testsmtp"
)

// TestTeamMailEndToEnd: with smtp configured, an invite and a password reset are mailed through a real
// (in-process) relay, and the links in the received mails are followed over the API to join, reset
// the password and sign in with it.
func TestTeamMailEndToEnd(t *testing.T) {
	t.Parallel()
	relay := testsmtp.Start(t, "", "")
	in := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.SMTP = config.SMTP{Host: relay.Host, Port: relay.Port, From: "Ony <ony@acme.test>", TLS: "none", Timeout: config.Duration(5 * time.Second)}
	}}).Seed(t)
	linkRE := regexp.MustCompile(regexp.QuoteMeta(in.URL) + `/console/(invite|reset)/(ony_(?:inv|rst)_[A-Za-z0-9_-]{43})`)
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	r := admin.do("POST", "/v1/team/invites", map[string]any{"email": "mailed@acme.test", "role": "viewer"})
	var inv struct {
		Link   string `json:"link"`
		Mailed bool   `json:"mailed"`
	}
	if r.Status != 201 || json.Unmarshal(r.Body, &inv) != nil || !inv.Mailed {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	got := relay.Messages()
	if len(got) != 1 || got[0].To != "mailed@acme.test" || got[0].From != "ony@acme.test" {
		t.Fatalf("relay got %+v", got)
	}
	_, text := got[0].Parse(t)
	m := linkRE.FindStringSubmatch(text)
	if m == nil || m[0] != inv.Link || m[1] != "invite" {
		t.Fatalf("invite mail: %q", text)
	}
	nobody := anon(t, in.URL)
	if r := nobody.do("POST", "/v1/invites/accept", map[string]string{"code": m[2], "name": "Mailed", "password": "first long passphrase"}); r.Status != 201 {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}
	if r := nobody.do("POST", "/v1/auth/forgot", map[string]string{"email": "mailed@acme.test"}); r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	got = relay.Messages()
	if len(got) != 3 || got[1].To != "mailed@acme.test" || got[2].To != "mailed@acme.test" {
		t.Fatalf("relay got %d mails, want invite, welcome and reset", len(got))
	}
	if w, _ := got[1].Parse(t); !strings.Contains(w.Header.Get("Subject"), "Welcome") {
		t.Errorf("second mail: %q, want the welcome", w.Header.Get("Subject"))
	}
	_, text = got[2].Parse(t)
	m = linkRE.FindStringSubmatch(text)
	if m == nil || m[1] != "reset" {
		t.Fatalf("reset mail: %q", text)
	}
	if r := nobody.do("POST", "/v1/auth/reset", map[string]string{"code": m[2], "password": "second long passphrase"}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if r := nobody.do("POST", "/v1/auth/login", map[string]string{"email": "mailed@acme.test", "password": "second long passphrase"}); r.Status != 200 {
		t.Fatalf("login with the new password: %d %s", r.Status, r.Body)
	}
	for _, g := range got {
		if strings.Contains(string(g.Data), "passphrase") {
			t.Error("a mail holds a password")
		}
	}
}
