package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/org"
)

// received is one message the test relay accepted.
type received struct {
	From, To string
	Authed   string
	Data     []byte
}

// relay is an in-process SMTP server: STARTTLS with a test certificate, PLAIN auth for one user.
type relay struct {
	mu   sync.Mutex
	got  []received
	user string
	pass string
	addr string
	ca   *x509.CertPool
	cert tls.Certificate
}

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type relaySession struct {
	r   *relay
	cur received
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.pass {
			return errors.New("invalid credentials")
		}
		s.cur.Authed = username
		return nil
	}), nil
}
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.cur.To = to; return nil }
func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	if s.r.user != "" && s.cur.Authed == "" {
		return errors.New("authentication required")
	}
	s.cur.Data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.cur)
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        { s.cur = received{Authed: s.cur.Authed} }
func (s *relaySession) Logout() error { return nil }

func startRelay(t *testing.T, user, pass string) *relay {
	t.Helper()
	r := &relay{user: user, pass: pass}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	r.ca = x509.NewCertPool()
	r.ca.AddCert(leaf)
	r.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{r.cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *relay) sender(t *testing.T, pass string) *mail.SMTP {
	t.Helper()
	host, port, _ := net.SplitHostPort(r.addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	s, err := mail.NewSMTP(mail.Config{Host: host, Port: p, Username: r.user, Password: pass, From: "Ony <ony@acme.test>",
		TLS: "starttls", Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: r.ca, ServerName: "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// body decodes a received message's text.
func body(t *testing.T, data []byte) (*netmail.Message, string) {
	t.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	var rd io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		rd = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(b)
}

func TestSMTPSendsOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "mailer", "relay-secret-pw")
	s := r.sender(t, "relay-secret-pw")
	link := "https://ony.test/console/invite/ony_inv_abc"
	err := s.Send(context.Background(), mail.Message{To: "ana@acme.test", Subject: "Hello\r\nBcc: evil@x.test", Text: "Join here:\n" + link + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.messages()
	if len(got) != 1 || got[0].From != "ony@acme.test" || got[0].To != "ana@acme.test" || got[0].Authed != "mailer" {
		t.Fatalf("envelope %+v", got)
	}
	m, text := body(t, got[0].Data)
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
	r := startRelay(t, "mailer", "right")
	if err := r.sender(t, "wrong").Send(context.Background(), mail.Message{To: "a@acme.test", Subject: "x", Text: "x"}); err == nil {
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
	r := startRelay(t, "mailer", "relay-secret-pw")
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	sv := org.Service{Store: testdb.Open(t, "sqlite"), Audit: audit.New(keys, "ony-test", nil, nil), PublicURL: "https://ony.test",
		Mail: r.sender(t, "relay-secret-pw")}
	o, err := sv.Create(ctx, audit.Actor{Kind: "system", ID: "test"}, org.NewOrg{Name: "Acme", AdminEmail: "boss@acme.test", Password: "the boss passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	admin := audit.Actor{Kind: "user", ID: o.AdminID, Role: "admin"}
	inv, err := sv.Invite(ctx, admin, o.OrgID, "ana@acme.test", "member")
	if err != nil || !inv.Mailed {
		t.Fatalf("invite %+v %v", inv, err)
	}
	got := r.messages()
	if len(got) != 1 || got[0].To != "ana@acme.test" {
		t.Fatalf("mails %+v", got)
	}
	m, text := body(t, got[0].Data)
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
	got = r.messages()
	if len(got) != 2 || got[1].To != "ana@acme.test" {
		t.Fatalf("mails after forgot: %+v", got)
	}
	_, text = body(t, got[1].Data)
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
