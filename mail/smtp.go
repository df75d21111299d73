package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Config is how to reach the relay.
type Config struct {
	Host     string
	Port     int // 0 = 587
	Username string
	Password string
	From     string // "ony@example.com" or "Ony <ony@example.com>"
	// TLS is starttls (the upgrade is required; the default), tls (implicit TLS) or none.
	TLS string
	// Timeout bounds connecting and sending one message; 0 = 10 s.
	Timeout time.Duration
	// TLSConfig replaces the default TLS settings (tests trust their own CA); nil = system roots and
	// the relay's host name.
	TLSConfig *tls.Config
	// Dial, when set, opens the connection to the relay (tests that record where Ony connects); nil is
	// a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// SMTP sends through a relay, one connection per message (invites and resets are rare).
type SMTP struct {
	cfg  Config
	opts []gomail.Option
}

// NewSMTP checks cfg and returns a sender; it does not connect.
func NewSMTP(cfg Config) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: no SMTP host")
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: sender address: %w", err)
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	switch cfg.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("mail: tls must be starttls, tls or none, not %q", cfg.TLS)
	}
	tlsConfig := cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, gomail.WithTLSConfig(tlsConfig))
	if cfg.Dial != nil {
		opts = append(opts, gomail.WithDialContextFunc(dialer(cfg.Dial, cfg.TLS == "tls", tlsConfig)))
	}
	if cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if cfg.TLS == "none" {
			auth = gomail.SMTPAuthPlainNoEnc // configuration allows this towards localhost only
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return &SMTP{cfg: cfg, opts: opts}, nil
}

// Send delivers m, giving up after the configured timeout.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(oneLine(m.Subject))
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetUserAgent("Ony")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail: client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send via %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

// oneLine keeps a subject to one line: an organization's name is typed by a person.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// dialer is dial, with the TLS handshake go-mail does itself only on its own dialer when implicit is
// set.
func dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), implicit bool, c *tls.Config) gomail.DialContextFunc {
	if !implicit {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, c.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}
