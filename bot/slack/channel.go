package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// ErrNotFound is returned by LookupByEmail when no member of the workspace has that email.
var ErrNotFound = errors.New("slack: no member with that email")

// Config configures the Slack channel.
type Config struct {
	// BotToken (xoxb-…) calls the Web API; SigningSecret verifies the interactivity and slash-command
	// requests Slack sends to /hooks/slack/; AppToken (xapp-…) turns on Socket Mode.
	BotToken, SigningSecret, AppToken string
	// APIURL is the Web API base, ending in "/"; tests point it at slacktest.
	APIURL string
	// Timeout bounds every outbound request (default 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Clock is Ony's time for the 5-minute window on Slack's request timestamps; slack-go's verifier
	// checks the same window against the system clock as well, so a request must pass both.
	Clock func() time.Time
	// HTTPClient is used for every outbound request; its own Timeout is kept when set.
	HTTPClient *http.Client
	// Dialer, when set, opens Socket Mode's websocket (tests that record where Ony connects).
	Dialer *websocket.Dialer
}

// Channel is the Slack channel: it posts Block Kit messages with decision buttons, rewrites them once
// the handoff is final, and receives button taps and /ony commands.
type Channel struct {
	cfg    Config
	api    *slack.Client
	http   *http.Client
	apiURL *url.URL
	log    *slog.Logger
	now    func() time.Time
}

var (
	_ channel.Channel  = (*Channel)(nil)
	_ channel.Receiver = (*Channel)(nil)
	_ channel.Runner   = (*Channel)(nil)
)

// New builds the Slack channel; BotToken is required.
func New(cfg Config) (*Channel, error) {
	if cfg.BotToken == "" {
		return nil, errors.New("slack: a bot token is required")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("slack: the API URL must be an absolute http(s) URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	} else if hc.Timeout == 0 {
		c := *hc
		c.Timeout = cfg.Timeout
		hc = &c
	}
	c := &Channel{cfg: cfg, http: hc, apiURL: u, log: cfg.Logger, now: cfg.Clock}
	c.api = slack.New(cfg.BotToken, slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(bearer{client: hc, token: cfg.BotToken}))
	return c, nil
}

func (*Channel) Kind() string     { return Kind.Name }
func (*Channel) Provider() string { return "slack" }

// bearer sends the bot token in the Authorization header instead of the form body slack-go puts it
// in, so the token never sits in a request body that a proxy or the fake might record.
type bearer struct {
	client *http.Client
	token  string
}

func (b bearer) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		raw, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("slack: read request: %w", err)
		}
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, fmt.Errorf("slack: request form: %w", err)
		}
		vals.Del("token")
		body := vals.Encode()
		req.Body = io.NopCloser(strings.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.client.Do(req)
}

// maxRetries bounds how often one call is retried after Slack answers 429.
const maxRetries = 2

// call runs fn, waiting out Slack's Retry-After and retrying up to maxRetries times. When ctx would
// end before the wait does, it returns the rate-limit error at once so the engine can fail over.
func (c *Channel) call(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || attempt >= maxRetries {
			return err
		}
		wait := max(rl.RetryAfter, 0)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Notify posts n to the member (Slack opens the DM when the channel is a member id) or the team
// channel, with one button per option.
func (c *Channel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	if n.Recipient.Address == "" {
		return channel.Delivery{}, errors.New("slack: the recipient has no address")
	}
	blocks, err := notificationBlocks(n)
	if err != nil {
		return channel.Delivery{}, err
	}
	text := fallbackText(n)
	var chID, ts string
	err = c.call(ctx, func() error {
		var err error
		chID, ts, err = c.api.PostMessageContext(ctx, n.Recipient.Address,
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		return channel.Delivery{}, fmt.Errorf("slack: chat.postMessage: %w", err)
	}
	if chID == "" || ts == "" {
		return channel.Delivery{}, errors.New("slack: chat.postMessage answered without a channel or ts")
	}
	return channel.Delivery{Ref: chID + "/" + ts, State: store.SendSent}, nil
}

// Update rewrites the message Ref names with the outcome and no buttons. A message Slack no longer
// has (deleted, or too old to edit) leaves nothing to rewrite.
func (c *Channel) Update(ctx context.Context, u channel.Update) error {
	chID, ts, ok := strings.Cut(u.Ref, "/")
	if !ok || chID == "" || ts == "" {
		return errors.New("slack: update: the reference is not <channel>/<ts>")
	}
	text := u.Text
	if text == "" {
		text = "This handoff is " + string(u.Status) + "."
	}
	err := c.call(ctx, func() error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, chID, ts,
			slack.MsgOptionText(escape(text), false), slack.MsgOptionBlocks(updateBlocks(text)...))
		return err
	})
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && (se.Err == "message_not_found" || se.Err == "cant_update_message") {
		c.log.DebugContext(ctx, "slack: message to update is gone", "error", se.Err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("slack: chat.update: %w", err)
	}
	return nil
}

// LookupByEmail finds the member id of the workspace member with email ("find me on Slack" in the
// console); ErrNotFound when there is none.
func (c *Channel) LookupByEmail(ctx context.Context, email string) (string, error) {
	var user *slack.User
	err := c.call(ctx, func() error {
		var err error
		user, err = c.api.GetUserByEmailContext(ctx, email)
		return err
	})
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && se.Err == "users_not_found" {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("slack: users.lookupByEmail: %w", err)
	}
	if user == nil || user.ID == "" {
		return "", ErrNotFound
	}
	return user.ID, nil
}

// postJSON posts body to a response_url Slack handed us, within the channel's timeout.
func (c *Channel) postJSON(ctx context.Context, target string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("slack: response_url request could not be built")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// The response_url is a capability: say what failed, not where.
		return errors.New("slack: response_url post failed")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("slack: response_url answered %d", resp.StatusCode)
	}
	return nil
}

// responseURLAllowed accepts Slack's own hooks host, or the configured API's origin (the fake).
func (c *Channel) responseURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return false
	}
	if u.Scheme == "https" && u.Host == "hooks.slack.com" {
		return true
	}
	return u.Scheme == c.apiURL.Scheme && strings.EqualFold(u.Host, c.apiURL.Host)
}
