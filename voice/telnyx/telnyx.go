// Package telnyx is SMS and calls through Telnyx: the Messaging API for texts, Call Control v2 for keypad
// calls or a media stream to the voice agent, Ed25519-signed webhooks under /hooks/telnyx/; own client.
package telnyx

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice"
)

// Name is the provider's name: Provider() of both channels and the /hooks/telnyx/ prefix.
const Name = "telnyx"

// Config configures the Telnyx provider.
type Config struct {
	// APIKey is a Telnyx API v2 key; it only ever travels in the Authorization header.
	APIKey string
	// PublicKey is the account's webhook public key (Mission Control → Keys & Credentials → Public
	// Key), base64 of the 32-byte Ed25519 key: every webhook is checked against it.
	PublicKey string
	// ConnectionID is the Call Control application calls are placed through.
	ConnectionID string
	// From is the Telnyx number texts and calls come from, E.164.
	From string
	// APIURL is the API base, default https://api.telnyx.com.
	APIURL string
	// PublicURL is where Telnyx reaches this server (https://ony.example.com); webhooks go to
	// PublicURL + /hooks/telnyx/{sms,call}.
	PublicURL string
	// Timeout bounds each API request (default 10 s).
	Timeout time.Duration
	// Media, when set, puts calls in voice-agent mode (issue 16): each call streams to the handler it
	// builds, served at GET /hooks/telnyx/media, and the keypad takes over when the stream ends.
	Media      func(host channel.Host) http.Handler
	Logger     *slog.Logger
	Clock      func() time.Time
	HTTPClient *http.Client
}

// Provider is one Telnyx account: SMS() and Call() are its two channels.
type Provider struct {
	key, connection, from, base, public string
	pub                                 ed25519.PublicKey
	timeout                             time.Duration
	log                                 *slog.Logger
	clock                               func() time.Time
	client                              *http.Client
	media                               func(host channel.Host) http.Handler
	// wait sleeps between retries of a call command; tests make it instant.
	wait func(ctx context.Context, d time.Duration) error
}

// New checks cfg and builds the provider; a key or URL Telnyx would refuse is an error here, at
// start, rather than on the first escalation.
func New(cfg Config) (*Provider, error) {
	if strings.TrimSpace(cfg.APIKey) == "" || strings.ContainsAny(cfg.APIKey, " \r\n") {
		return nil, errors.New("telnyx: the API key is empty or has spaces in it")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cfg.PublicKey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("telnyx: the public key must be base64 of a 32-byte Ed25519 key (as the Telnyx portal shows it)")
	}
	if cfg.ConnectionID == "" {
		return nil, errors.New("telnyx: the connection id (the Call Control application) is empty")
	}
	from, err := voice.Phone.Normalize(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("telnyx: from number: %w", err)
	}
	base := strings.TrimRight(cfg.APIURL, "/")
	if base == "" {
		base = "https://api.telnyx.com"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("telnyx: API URL %q is not an http(s) URL", base)
	}
	public := strings.TrimRight(cfg.PublicURL, "/")
	if u, err := url.Parse(public); public == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("telnyx: the server's public URL is needed: Telnyx posts its webhooks there")
	}
	p := &Provider{key: cfg.APIKey, connection: cfg.ConnectionID, from: from, base: base, public: public,
		pub: ed25519.PublicKey(raw), timeout: cfg.Timeout, log: cfg.Logger, clock: cfg.Clock, client: cfg.HTTPClient, wait: sleep, media: cfg.Media}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.client == nil {
		p.client = &http.Client{}
	}
	return p, nil
}

// SendSMS texts body to the phone number to from the configured number, with no status callback
// (phone verification codes use it).
func (p *Provider) SendSMS(ctx context.Context, to, body string) error {
	_, err := p.sendMessage(ctx, to, body, "")
	return err
}

// sendMessage posts one text; webhook, when set, is where Telnyx reports its delivery.
func (p *Provider) sendMessage(ctx context.Context, to, text, webhook string) (string, error) {
	to, err := voice.Phone.Normalize(to)
	if err != nil {
		return "", fmt.Errorf("telnyx: message: %w", err)
	}
	if text == "" {
		return "", errors.New("telnyx: message: empty text")
	}
	req := messageRequest{From: p.from, To: to, Text: text, WebhookURL: webhook}
	var out struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := p.call(ctx, "message", "/v2/messages", req, &out, false); err != nil {
		return "", err
	}
	if out.Data.ID == "" {
		return "", errors.New("telnyx: message: the reply has no message id")
	}
	return out.Data.ID, nil
}

type messageRequest struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Text       string `json:"text"`
	WebhookURL string `json:"webhook_url,omitempty"`
}

func (p *Provider) hookURL(path string) string { return p.public + "/hooks/" + Name + "/" + path }
