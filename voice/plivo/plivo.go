// Package plivo is SMS and calls (keypad, or the voice agent over a media Stream) through Plivo: its REST
// API (JSON, Basic auth), Plivo XML for the call, and the webhooks under /hooks/plivo/, signed with V3.
package plivo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/voice"
)

// Name is the provider's name: Provider() of both channels and the /hooks/plivo/ prefix.
const Name = "plivo"

// Config configures Plivo.
type Config struct {
	// AuthID and AuthToken are the account's API credentials; the token also signs Plivo's webhooks.
	AuthID, AuthToken string
	// From is the Plivo number texts and calls come from, E.164.
	From string
	// APIURL is the REST API base, default https://api.plivo.com.
	APIURL string
	// PublicURL is where Plivo reaches this server (https://ony.example.com); webhook URLs are built
	// from it, and signatures are checked against exactly those URLs.
	PublicURL string
	// Timeout bounds each REST call (default 10 s).
	Timeout    time.Duration
	Logger     *slog.Logger
	Clock      func() time.Time
	HTTPClient *http.Client
	// Media, when set, turns on the voice agent: the answer document streams the call to Ony's media
	// websocket (GET /hooks/plivo/media, the handler Media builds) and the keypad takes over when the
	// stream ends. Nil: keypad only.
	Media func(host channel.Host) http.Handler
}

// Provider is one Plivo account: its SMS and call channels share the client and the webhooks' key.
type Provider struct {
	authID, authToken, from string
	base, public            string
	timeout                 time.Duration
	log                     *slog.Logger
	clock                   func() time.Time
	client                  *http.Client
	media                   func(channel.Host) http.Handler
}

var (
	authIDRE = lazyregexp.New(`^[A-Z0-9]{10,40}$`)
	e164RE   = lazyregexp.New(`^\+[1-9][0-9]{6,14}$`)
)

// New checks cfg and builds the provider; a setting Plivo would refuse is an error at start.
func New(cfg Config) (*Provider, error) {
	if !authIDRE.MatchString(cfg.AuthID) {
		return nil, errors.New("plivo: the auth id must be Plivo's MA…/SA… id (10 to 40 capital letters and digits)")
	}
	if len(cfg.AuthToken) < 8 {
		return nil, errors.New("plivo: the auth token is missing or too short")
	}
	if !e164RE.MatchString(cfg.From) {
		return nil, fmt.Errorf("plivo: the From number %s is not E.164 (+ then 7 to 15 digits)", voice.MaskPhone(cfg.From))
	}
	base := cfg.APIURL
	if base == "" {
		base = "https://api.plivo.com"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("plivo: the API URL is not an http(s) URL")
	}
	u, err := url.Parse(cfg.PublicURL)
	if cfg.PublicURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, errors.New("plivo: the public URL (where Plivo posts webhooks) must be an http(s) URL without a query")
	}
	p := &Provider{
		authID: cfg.AuthID, authToken: cfg.AuthToken, from: cfg.From,
		base: strings.TrimRight(base, "/"), public: strings.TrimRight(cfg.PublicURL, "/"),
		timeout: cfg.Timeout, log: cfg.Logger, clock: cfg.Clock, client: cfg.HTTPClient, media: cfg.Media,
	}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.client == nil {
		p.client = &http.Client{}
	}
	return p, nil
}

// hookURL is the public URL of one of Ony's Plivo routes, as Plivo is told it and signs it.
func (p *Provider) hookURL(path string, query url.Values) string {
	s := p.public + "/hooks/" + Name + "/" + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// SendSMS texts body to the E.164 number to from the configured number (phone verification codes).
func (p *Provider) SendSMS(ctx context.Context, to, body string) error {
	_, err := p.sendSMS(ctx, to, body, "")
	return err
}

func (p *Provider) sendSMS(ctx context.Context, to, body, statusURL string) (string, error) {
	if !e164RE.MatchString(to) {
		return "", fmt.Errorf("plivo: send SMS: %s is not an E.164 number", voice.MaskPhone(to))
	}
	req := map[string]string{"src": digits(p.from), "dst": digits(to), "text": body}
	if statusURL != "" {
		req["url"], req["method"] = statusURL, http.MethodPost
	}
	var out struct {
		MessageUUID []string `json:"message_uuid"`
	}
	if err := p.post(ctx, "Message", req, &out); err != nil {
		return "", fmt.Errorf("plivo: send SMS to %s: %w", voice.MaskPhone(to), err)
	}
	if len(out.MessageUUID) == 0 || out.MessageUUID[0] == "" {
		return "", fmt.Errorf("plivo: send SMS to %s: no message_uuid in the reply", voice.MaskPhone(to))
	}
	return out.MessageUUID[0], nil
}

// digits is an E.164 number as Plivo writes numbers: without the "+".
func digits(e164 string) string { return strings.TrimPrefix(e164, "+") }

// e164 is a number Plivo sent (digits, maybe with a "+") in E.164, or "" when it is not a number.
func e164(s string) string {
	if !strings.HasPrefix(s, "+") {
		s = "+" + s
	}
	if !e164RE.MatchString(s) {
		return ""
	}
	return s
}

// maxReply bounds a REST reply we read; real ones are a few hundred bytes.
const maxReply = 1 << 20

// APIError is a refusal from Plivo's REST API: the HTTP status and Plivo's "error" text, which
// names a field or a reason and never the auth token. Retryable tells 429 and 5xx apart.
type APIError struct {
	Resource string
	Status   int
	Message  string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Resource, e.Status, msg)
}

// Retryable reports whether trying again later (or another provider) may succeed.
func (e *APIError) Retryable() bool { return e.Status == http.StatusTooManyRequests || e.Status >= 500 }

// post sends body as JSON to /v1/Account/{auth_id}/{resource}/ and decodes the reply into out.
func (p *Provider) post(ctx context.Context, resource string, body any, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", resource, err)
	}
	return p.do(ctx, http.MethodPost, resource, raw, out)
}

func (p *Provider) do(ctx context.Context, method, resource string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+"/v1/Account/"+p.authID+"/"+resource+"/", rd)
	if err != nil {
		return fmt.Errorf("%s: build request: %w", resource, err)
	}
	req.SetBasicAuth(p.authID, p.authToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; keep only the cause (a deadline, a refused connection).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", resource, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("%s: read reply: %w", resource, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		ae := &APIError{Resource: resource, Status: resp.StatusCode}
		if json.Unmarshal(rb, &e) == nil && len(e.Error) > 0 {
			ae.Message = errorText(e.Error)
		}
		return ae
	}
	if out != nil && len(rb) > 0 {
		if err := json.Unmarshal(rb, out); err != nil {
			return fmt.Errorf("%s: HTTP %d with an unreadable reply", resource, resp.StatusCode)
		}
	}
	return nil
}

// errorText is Plivo's "error": a string, or an object of field → reason. Numbers in it are masked:
// Plivo's messages may quote the destination ("+14155550123 is not a valid number").
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return "unreadable error"
		}
		b, _ := json.Marshal(m)
		s = string(b)
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return numberRE.ReplaceAllStringFunc(s, func(n string) string { return voice.MaskPhone("+" + strings.TrimPrefix(n, "+")) })
}

var numberRE = lazyregexp.New(`\+?[0-9]{7,15}`)
