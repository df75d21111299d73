// Package twilio is SMS and keypad calls through Twilio and through SignalWire's Twilio-compatible
// (LaML) API: one REST client, TwiML rendering and signed webhooks under /hooks/{twilio|signalwire}/.
package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/voice"
)

// Flavor says which of the two compatible services a Provider talks to.
type Flavor int

const (
	// Twilio signs webhooks with the account's auth token.
	Twilio Flavor = iota
	// SignalWire serves the same paths under its space's /api/laml and signs with the project's
	// signing key.
	SignalWire
)

// String is the flavor's provider name.
func (f Flavor) String() string {
	switch f {
	case Twilio:
		return "twilio"
	case SignalWire:
		return "signalwire"
	}
	return "flavor(" + strconv.Itoa(int(f)) + ")"
}

// Config configures one Twilio or SignalWire account.
type Config struct {
	Flavor Flavor
	// AccountSID is the account (SignalWire: the project id); with AuthToken it is the REST API's
	// Basic auth.
	AccountSID string
	// AuthToken is the account's auth token (SignalWire: an API token). Twilio signs webhooks with it.
	AuthToken string
	// SigningKey is SignalWire's webhook signing key; Twilio ignores it.
	SigningKey string
	// From is the number texts and calls come from, E.164.
	From string
	// APIURL is the REST base: default https://api.twilio.com; SignalWire has no default, it is the
	// space URL + "/api/laml" (https://example.signalwire.com/api/laml).
	APIURL string
	// PublicURL is where the provider reaches this server (https://ony.example.com): callbacks are
	// published under it, and signatures are checked against the URLs Ony published.
	PublicURL string
	// Timeout bounds each REST call (default 10 s).
	Timeout    time.Duration
	Logger     *slog.Logger
	Clock      func() time.Time
	HTTPClient *http.Client
	// Media, when set, turns on the voice agent: the call document connects the call to Ony's media
	// websocket (GET /hooks/{name}/media, the handler Media builds for the provider's flavour) and
	// falls back to the keypad when the stream ends undecided. Nil: keypad only.
	Media func(host channel.Host, flavor Flavor) http.Handler
}

// Provider is one configured account: it offers an SMS channel and a call channel.
type Provider struct {
	flavor          Flavor
	name            string // "twilio" or "signalwire": Provider() and the /hooks/ segment
	sid, token, key string
	from, base      string
	public          string
	timeout         time.Duration
	log             *slog.Logger
	clock           func() time.Time
	client          *http.Client
	media           func(host channel.Host, flavor Flavor) http.Handler
}

var sidRE = lazyregexp.New(`^[A-Za-z0-9-]{8,64}$`)

// New checks cfg and builds the provider. Credentials or URLs the service would refuse are an error
// here, at start, rather than on the first escalation; no error quotes a secret.
func New(cfg Config) (*Provider, error) {
	p := &Provider{flavor: cfg.Flavor, sid: cfg.AccountSID, token: cfg.AuthToken, from: cfg.From,
		timeout: cfg.Timeout, log: cfg.Logger, clock: cfg.Clock, client: cfg.HTTPClient, media: cfg.Media}
	base := cfg.APIURL
	switch cfg.Flavor {
	case Twilio:
		p.name, p.key = "twilio", cfg.AuthToken
		if base == "" {
			base = "https://api.twilio.com"
		}
	case SignalWire:
		p.name, p.key = "signalwire", cfg.SigningKey
		if base == "" {
			return nil, errors.New("signalwire: the API URL is needed: the space URL + /api/laml (https://example.signalwire.com/api/laml)")
		}
		if cfg.SigningKey == "" {
			return nil, errors.New("signalwire: the signing key is needed to check webhooks")
		}
	default:
		return nil, fmt.Errorf("twilio: unknown flavor %d", cfg.Flavor)
	}
	if !sidRE.MatchString(cfg.AccountSID) {
		return nil, fmt.Errorf("%s: the account SID (project id) is missing or malformed", p.name)
	}
	if cfg.AuthToken == "" {
		return nil, fmt.Errorf("%s: the auth token is missing", p.name)
	}
	if _, err := voice.Phone.Normalize(cfg.From); err != nil || cfg.From != strings.TrimSpace(cfg.From) {
		return nil, fmt.Errorf("%s: the From number %s is not E.164", p.name, voice.MaskPhone(cfg.From))
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%s: the API URL is not an http(s) URL without credentials", p.name)
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%s: the public URL (where the provider posts callbacks) must be an http(s) URL without a query", p.name)
	}
	p.base = strings.TrimRight(base, "/")
	p.public = strings.TrimRight(cfg.PublicURL, "/")
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

// Name is "twilio" or "signalwire": every channel's Provider() and the /hooks/ segment.
func (p *Provider) Name() string { return p.name }

// hookURL is the absolute URL Ony publishes for one of its routes (path below /hooks/{name}/).
func (p *Provider) hookURL(path string, q url.Values) string {
	s := p.public + "/hooks/" + p.name + "/" + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// SendSMS texts body to the E.164 number to, from the configured number (phone verification codes).
func (p *Provider) SendSMS(ctx context.Context, to, body string) error {
	_, err := p.sendSMS(ctx, to, body, "")
	return err
}

func (p *Provider) sendSMS(ctx context.Context, to, body, statusCallback string) (string, error) {
	if _, err := voice.Phone.Normalize(to); err != nil {
		return "", fmt.Errorf("%s: sms: %w", p.name, err)
	}
	if body == "" || len([]rune(body)) > 1600 {
		return "", fmt.Errorf("%s: sms: a body of %d characters (1 to 1600)", p.name, len([]rune(body)))
	}
	f := url.Values{"To": {to}, "From": {p.from}, "Body": {body}}
	if statusCallback != "" {
		f.Set("StatusCallback", statusCallback)
	}
	r, err := p.post(ctx, "Messages.json", f)
	if err != nil {
		return "", fmt.Errorf("%s: sms to %s: %w", p.name, voice.MaskPhone(to), err)
	}
	return r.SID, nil
}

// resource is the part of a created Message or Call Ony keeps.
type resource struct {
	SID    string `json:"sid"`
	Status string `json:"status"`
}

// APIError is the provider's refusal: its HTTP status and its own error code and message, with any
// phone number in the message masked.
type APIError struct {
	Status  int
	Code    int
	Message string
}

func (e *APIError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("HTTP %d, error %d: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// Temporary reports whether trying again later may work (rate limited or the provider failing).
func (e *APIError) Temporary() bool { return e.Status == http.StatusTooManyRequests || e.Status >= 500 }

// maxReply bounds a REST reply we read; a created resource is a few KiB.
const maxReply = 1 << 20

var numberRE = lazyregexp.New(`\+?[0-9][0-9 ()-]{5,18}[0-9]`)

// maskNumbers masks every phone-number-looking run in a provider's message ("The 'To' number
// +15558675310 is not a valid phone number").
func maskNumbers(s string) string {
	return numberRE.ReplaceAllStringFunc(s, func(m string) string {
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, m)
		return voice.MaskPhone("+" + d)
	})
}

// post creates a resource under the account: form-encoded, Basic auth, a timeout, the status checked.
func (p *Provider) post(ctx context.Context, resourcePath string, f url.Values) (resource, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	u := p.base + "/2010-04-01/Accounts/" + url.PathEscape(p.sid) + "/" + resourcePath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(f.Encode()))
	if err != nil {
		return resource{}, errors.New("building the request failed")
	}
	req.SetBasicAuth(p.sid, p.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; keep only the cause (a deadline, a refused connection).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return resource{}, fmt.Errorf("POST %s: %w", resourcePath, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return resource{}, fmt.Errorf("POST %s: reading the reply failed", resourcePath)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(raw, &e) == nil {
			ae.Code, ae.Message = e.Code, maskNumbers(strings.ReplaceAll(e.Message, p.token, "…"))
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return resource{}, ae
	}
	var r resource
	if err := json.Unmarshal(raw, &r); err != nil || r.SID == "" {
		return resource{}, fmt.Errorf("POST %s: HTTP %d with an unreadable reply", resourcePath, resp.StatusCode)
	}
	return r, nil
}
