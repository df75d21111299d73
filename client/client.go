// Package client is the Go client for Ony's agent API: create a handoff (idempotently), read it, wait
// for the decision, cancel it, and verify the signed callbacks Ony sends.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/ony-ai/ony/auth"
)

// Statuses a handoff can have.
const (
	StatusPending   = "pending"
	StatusApproved  = "approved"
	StatusDenied    = "denied"
	StatusExpired   = "expired"
	StatusCancelled = "cancelled"
)

// Option is one answer a human can give.
type Option struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	Approves bool   `json:"approves"`
}

// Payload is what the agent attaches for the human to inspect in the console.
type Payload struct {
	Kind    string `json:"kind"` // command | diff | log | text
	Content string `json:"content"`
}

// CreateRequest asks for a decision.
type CreateRequest struct {
	Action      string            `json:"action"`
	Title       string            `json:"title"`
	Summary     string            `json:"summary,omitempty"`
	Options     []Option          `json:"options,omitempty"`
	Payload     *Payload          `json:"payload,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CallbackURL string            `json:"callback_url,omitempty"`
	// Timeout is how long a human has; the server bounds it. Zero means the server's default.
	Timeout time.Duration `json:"-"`
}

// Handoff is the server's view of a request.
type Handoff struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Action  string `json:"action"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
	// Gist is the short, secret-free text Ony's channels carry.
	Gist        string            `json:"gist"`
	Risk        string            `json:"risk"`
	RiskReasons []string          `json:"risk_reasons"`
	Options     []Option          `json:"options"`
	Labels      map[string]string `json:"labels"`
	Payload     *struct {
		Kind  string `json:"kind"`
		Bytes int    `json:"bytes"`
	} `json:"payload"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ConsoleURL string    `json:"console_url"`
	Decision   *Decision `json:"decision"`
}

// Final reports whether the handoff can no longer change.
func (h *Handoff) Final() bool { return h.Status != StatusPending }

// Decision is how a handoff ended.
type Decision struct {
	Option    string    `json:"option"`
	Approved  bool      `json:"approved"`
	By        *Decider  `json:"by"`
	Channel   string    `json:"channel"`
	Comment   string    `json:"comment"`
	DecidedAt time.Time `json:"decided_at"`
	Outcome   string    `json:"outcome"`
}

// Decider names who decided.
type Decider struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Error is an API error with its stable code.
type Error struct {
	Status  int             `json:"-"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("ony: %d %s: %s", e.Status, e.Code, e.Message) }

// Client talks to one Ony server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Options configure a client.
type Options struct {
	// HTTPClient overrides the default client (which has a 90 s timeout, longer than a long-poll).
	HTTPClient *http.Client
}

// New returns a client for baseURL (e.g. "http://127.0.0.1:8080") authenticating with a device token.
// An empty token makes a client for people, which signs in with Login.
func New(baseURL, token string, o *Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ony client: base URL must be http(s)://host[:port], got %q", baseURL)
	}
	c := &Client{base: u, token: token}
	if o != nil && o.HTTPClient != nil {
		c.http = o.HTTPClient
	} else {
		jar, _ := cookiejar.New(nil)
		c.http = &http.Client{Timeout: 90 * time.Second, Jar: jar}
	}
	return c, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any, hdr http.Header, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp, err
	}
	if resp.StatusCode >= 400 {
		var eb struct {
			Error Error `json:"error"`
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			eb.Error = Error{Code: "http_error", Message: http.StatusText(resp.StatusCode)}
		}
		eb.Error.Status = resp.StatusCode
		return resp, &eb.Error
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("ony client: decode response: %w", err)
		}
	}
	return resp, nil
}

// NewIdempotencyKey returns a random key; reuse it when retrying the same Create.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create posts a handoff. With an idempotency key, retrying the same request returns the same handoff
// instead of creating a twin. It reports whether the server replayed an earlier answer.
func (c *Client) Create(ctx context.Context, r CreateRequest, idempotencyKey string) (*Handoff, bool, error) {
	body := struct {
		CreateRequest
		Timeout string `json:"timeout,omitempty"`
	}{CreateRequest: r}
	if r.Timeout > 0 {
		body.Timeout = r.Timeout.String()
	}
	hdr := http.Header{}
	if idempotencyKey != "" {
		hdr.Set("Idempotency-Key", idempotencyKey)
	}
	var h Handoff
	resp, err := c.do(ctx, http.MethodPost, "/v1/handoffs", body, hdr, &h)
	if err != nil {
		return nil, false, err
	}
	return &h, resp.Header.Get("Idempotent-Replayed") == "true", nil
}

// Get reads a handoff.
func (c *Client) Get(ctx context.Context, id string) (*Handoff, error) {
	var h Handoff
	_, err := c.do(ctx, http.MethodGet, "/v1/handoffs/"+url.PathEscape(id), nil, nil, &h)
	return &h, err
}

// List reads handoffs, newest first; status may be empty.
func (c *Client) List(ctx context.Context, status string, limit int) ([]Handoff, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var out struct {
		Handoffs []Handoff `json:"handoffs"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/handoffs?"+q.Encode(), nil, nil, &out)
	return out.Handoffs, err
}

// WaitOnce long-polls once for up to timeout (the server caps it at 60 s).
func (c *Client) WaitOnce(ctx context.Context, id string, timeout time.Duration) (*Handoff, error) {
	var h Handoff
	q := url.Values{"timeout": {fmt.Sprintf("%ds", max(1, int(timeout.Seconds())))}}
	_, err := c.do(ctx, http.MethodGet, "/v1/handoffs/"+url.PathEscape(id)+"/wait?"+q.Encode(), nil, nil, &h)
	return &h, err
}

// Wait blocks until the handoff is final or ctx ends, reconnecting long-polls as they time out and
// retrying transient failures (network errors, 5xx, 429) with backoff. A 4xx other than 429 ends it.
func (c *Client) Wait(ctx context.Context, id string) (*Handoff, error) {
	backoff := 200 * time.Millisecond
	for {
		poll := 55 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			poll = min(poll, time.Until(dl))
		}
		h, err := c.WaitOnce(ctx, id, max(poll, time.Second))
		if err == nil {
			backoff = 200 * time.Millisecond
			if h.Final() {
				return h, nil
			}
			if ctx.Err() != nil {
				return h, ctx.Err()
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !Retryable(err) {
			return nil, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// Retryable reports whether a failed call may succeed if repeated: network errors, 5xx and 429. Other
// API answers (4xx) and the caller's own cancellation or deadline are final. Retrying a Create is safe
// only with an idempotency key.
func Retryable(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Cancel withdraws a pending handoff.
func (c *Client) Cancel(ctx context.Context, id, reason string) (*Handoff, error) {
	var h Handoff
	_, err := c.do(ctx, http.MethodPost, "/v1/handoffs/"+url.PathEscape(id)+"/cancel", map[string]string{"reason": reason}, nil, &h)
	return &h, err
}

// Escalation is how far a handoff's ladder has climbed: every notification Ony sent (or decided not
// to send) and its state.
type Escalation struct {
	Ladder  string `json:"ladder"`
	Version int    `json:"version"`
	Sends   []Send `json:"sends"`
}

// Send is one notification of one target on one channel, for one step and attempt of the ladder.
type Send struct {
	Climb   int    `json:"climb"`
	Step    int    `json:"step"`
	Attempt int    `json:"attempt"` // 0 for the first call, 1 for the first redial...
	Channel string `json:"channel"` // console, slack, telegram, sms, call or webhook
	// Target is a user id, or a team destination such as slack:#ops or webhook:teams. Read with a
	// device token, people show as "person" (and quiet hours as skipped): an agent learns how far
	// its request got, not who was paged.
	Target   string `json:"target"`
	Provider string `json:"provider"`
	// State is sending, sent, delivered, answered, no_answer, busy, failed, capped, quiet or skipped.
	State string `json:"state"`
	// Detail says why, e.g. quiet_hours, no_contact or rate_limited.
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Escalation reads how far a handoff's ladder has climbed.
func (c *Client) Escalation(ctx context.Context, id string) (*Escalation, error) {
	var e Escalation
	_, err := c.do(ctx, http.MethodGet, "/v1/handoffs/"+url.PathEscape(id)+"/escalation", nil, nil, &e)
	return &e, err
}

// Me describes the signed-in person or the device.
type Me struct {
	OrgID  string `json:"org_id"`
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Kind   string `json:"kind"`
}

// Login signs a person in; the session cookie is kept in the client's cookie jar.
func (c *Client) Login(ctx context.Context, email, password string) (*Me, error) {
	var me Me
	_, err := c.do(ctx, http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, nil, &me)
	return &me, err
}

// Decide records a signed-in person's answer.
func (c *Client) Decide(ctx context.Context, id, option, comment string) (*Handoff, error) {
	var h Handoff
	_, err := c.do(ctx, http.MethodPost, "/v1/handoffs/"+url.PathEscape(id)+"/decide", map[string]string{"option": option, "comment": comment}, nil, &h)
	return &h, err
}

// DecideStepUp is Decide with a TOTP code, which approving a high or critical handoff needs (the
// server answers 403 stepup_required without one).
func (c *Client) DecideStepUp(ctx context.Context, id, option, comment, totp string) (*Handoff, error) {
	var h Handoff
	body := map[string]string{"option": option, "comment": comment, "totp": totp}
	_, err := c.do(ctx, http.MethodPost, "/v1/handoffs/"+url.PathEscape(id)+"/decide", body, nil, &h)
	return &h, err
}

// VerifyCallback checks a callback Ony POSTed to the agent's callback_url (Standard Webhooks headers),
// using the device token the handoff was created with, and returns the handoff it carries.
// Deduplicate on the webhook-id header: retries repeat it.
func VerifyCallback(deviceToken string, h http.Header, body []byte, now time.Time) (*Handoff, error) {
	if err := auth.VerifyWebhook(auth.CallbackKey(deviceToken), h, body, now, 5*time.Minute); err != nil {
		return nil, err
	}
	var out Handoff
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("ony client: callback body: %w", err)
	}
	return &out, nil
}
