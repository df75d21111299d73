package mail_test

import (
	"context"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testsmtp"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/org"
)

func sender(t *testing.T, r *testsmtp.Relay, user, pass string) *mail.SMTP {
	t.Helper()
	s, err := mail.NewSMTP(mail.Config{Host: r.Host, Port: r.Port, Username: user, Password: pass, From: "Ony <ony@acme.test>",
		TLS: "starttls", Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: r.CA, ServerName: "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSendsOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	r := testsmtp.Start(t, "mailer", "relay-secret-pw")
	s := sender(t, r, "mailer", "relay-secret-pw")
	link := "https://ony.test/console/invite/ony_inv_abc"
	err := s.Send(context.Background(), mail.Message{To: "ana@acme.test", Subject: "Hello\r\nBcc: evil@x.test", Text: "Join here:\n" + link + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Messages()
	if len(got) != 1 || got[0].From != "ony@acme.test" || got[0].To != "ana@acme.test" || got[0].Authed != "mailer" {
		t.Fatalf("envelope %+v", got)
	}
	m, text := got[0].Parse(t)
	if m.Header.Get("To") != "<ana@acme.test>" && m.Header.Get("To") != "ana@acme.test" {
		t.Errorf("To: %q", m.Header.Get("To"))
	}
	if !strings.Contains(m.Header.Get("From"), "ony@acme.test") || m.Header.Get("Auto-Submitted") != "auto-generated" ||
		m.Header.Get("Date") == "" || m.Header.Get("Message-Id") == "" {
		t.Errorf("headers %v", m.Header)
	}
	if m.Header.Get("Bcc") != "" || !strings.HasPrefix(m.Header.Get("Subject"), "Hello") {
		t.Errorf("subject injected a header: %v", m.Header)
	}
	if !strings.Contains(text, link) {
		t.Errorf("body lacks the link: %q", text)
	}
	if strings.Contains(string(got[0].Data), "relay-secret-pw") {
		t.Error("the relay password is in the message")
	}
}

func TestSMTPFailures(t *testing.T) {
	t.Parallel()
	r := testsmtp.Start(t, "mailer", "right")
	if err := sender(t, r, "mailer", "wrong").Send(context.Background(), mail.Message{To: "a@acme.test", Subject: "x", Text: "x"}); err == nil {
		t.Error("a wrong password sent mail")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error quotes the password: %v", err)
	}
	// A relay that accepts the connection but never answers: Send gives up at the timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	s, err := mail.NewSMTP(mail.Config{Host: "127.0.0.1", Port: p, From: "ony@acme.test", TLS: "starttls", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Send(context.Background(), mail.Message{To: "a@acme.test", Subject: "x", Text: "x"}); err == nil {
		t.Error("a silent relay took the mail")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send waited %s on a silent relay; the timeout is 1s", d)
	}
	if _, err := mail.NewSMTP(mail.Config{Host: "x", From: "not an address"}); err == nil {
		t.Error("a bad sender address was accepted")
	}
}

var linkRE = regexp.MustCompile(`https://ony\.test/console/(invite|reset)/(ony_(?:inv|rst)_[A-Za-z0-9_-]{43})`)

// TestInviteAndResetMailsAreFollowed: the real service mails through the relay; the links in the
// received mails are followed to join and to reset a password; no mail carries anything else secret.
func TestInviteAndResetMailsAreFollowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testsmtp.Start(t, "mailer", "relay-secret-pw")
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	sv := org.Service{Store: testdb.Open(t, "sqlite"), Audit: audit.New(keys, "ony-test", nil, nil), PublicURL: "https://ony.test",
		Mail: sender(t, r, "mailer", "relay-secret-pw")}
	o, err := sv.Create(ctx, audit.Actor{Kind: "system", ID: "test"}, org.NewOrg{Name: "Acme", AdminEmail: "boss@acme.test", Password: "the boss passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	admin := audit.Actor{Kind: "user", ID: o.AdminID, Role: "admin"}
	inv, err := sv.Invite(ctx, admin, o.OrgID, "ana@acme.test", "member")
	if err != nil || !inv.Mailed {
		t.Fatalf("invite %+v %v", inv, err)
	}
	got := r.Messages()
	if len(got) != 1 || got[0].To != "ana@acme.test" {
		t.Fatalf("mails %+v", got)
	}
	m, text := got[0].Parse(t)
	if !strings.Contains(m.Header.Get("Subject"), "Acme") {
		t.Errorf("subject %q", m.Header.Get("Subject"))
	}
	lk := linkRE.FindStringSubmatch(text)
	if lk == nil || lk[0] != inv.Link {
		t.Fatalf("no invite link in %q", text)
	}
	if len(linkRE.FindAllString(text, -1)) != 1 {
		t.Errorf("more than one link: %q", text)
	}
	u, err := sv.AcceptInvite(ctx, lk[2], "Ana", "ana's long passphrase")
	if err != nil || u.Email != "ana@acme.test" {
		t.Fatalf("accept %+v %v", u, err)
	}

	if err := sv.ForgotPassword(ctx, "nobody@acme.test"); err != nil {
		t.Fatal(err)
	}
	if err := sv.ForgotPassword(ctx, "ana@acme.test"); err != nil {
		t.Fatal(err)
	}
	got = r.Messages()
	if len(got) != 3 || got[1].To != "ana@acme.test" || got[2].To != "ana@acme.test" {
		t.Fatalf("want invite, welcome and reset mails; got %d", len(got))
	}
	if m, text := got[1].Parse(t); !strings.Contains(m.Header.Get("Subject"), "Welcome") || linkRE.MatchString(text) {
		t.Errorf("welcome mail: subject %q, text %q", m.Header.Get("Subject"), text)
	}
	_, text = got[2].Parse(t)
	lk = linkRE.FindStringSubmatch(text)
	if lk == nil || lk[1] != "reset" {
		t.Fatalf("no reset link in %q", text)
	}
	if err := sv.ResetWithCode(ctx, lk[2], "ana's brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := sv.ResetWithCode(ctx, lk[2], "and once more, again"); err == nil {
		t.Error("a reset link worked twice")
	}
	for _, g := range got {
		for _, secret := range []string{"relay-secret-pw", "passphrase", "$pbkdf2"} {
			if strings.Contains(string(g.Data), secret) {
				t.Errorf("a mail holds %q", secret)
			}
		}
	}
}
