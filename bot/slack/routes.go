package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
)

const (
	// maxBody is far above any interaction or command Slack sends; the server's own limit is 1 MiB.
	maxBody = 64 << 10
	// onceTTL outlives Slack's 5-minute signature window, so a replay inside it is always caught.
	onceTTL = 10 * time.Minute
	// afterAck bounds deciding and answering once Slack has had its 200.
	afterAck = 20 * time.Second
)

const (
	genericFailure = "Ony could not record that, try the console."
	usage          = "Usage: `/ony link &lt;code&gt;` links your Slack account to your Ony account; make the code in the console under your profile. `/ony help` shows this."
)

// Routes implements channel.Receiver: POST /hooks/slack/interactions (button taps) and
// POST /hooks/slack/commands (/ony).
func (c *Channel) Routes(host channel.Host) []channel.Route {
	return []channel.Route{
		{Method: http.MethodPost, Path: "interactions", Handler: c.verified(host, c.interactions)},
		{Method: http.MethodPost, Path: "commands", Handler: c.verified(host, c.commands)},
	}
}

type verifiedHandler func(w http.ResponseWriter, r *http.Request, host channel.Host, body []byte)

// verified reads the raw body, checks Slack's signature and its 5-minute window, and drops an exact
// replay, before next sees anything. A request that fails changes nothing.
func (c *Channel) verified(host channel.Host, next verifiedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "could not read the request", http.StatusBadRequest)
			return
		}
		if len(body) > maxBody {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		sv, err := slack.NewSecretsVerifier(r.Header, c.cfg.SigningSecret)
		if err == nil {
			err = c.fresh(r.Header.Get("X-Slack-Request-Timestamp"))
		}
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			c.log.InfoContext(r.Context(), "slack: refused an unsigned or stale request", "path", r.URL.Path)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// Slack re-sends a request it got no 200 for (X-Slack-Retry-Num), and anyone who saw one could
		// replay it inside the window: one signature is acted on once, on every replica.
		if !c.once(r.Context(), host, "slack:sig:"+r.Header.Get("X-Slack-Signature")) {
			w.WriteHeader(http.StatusOK)
			return
		}
		next(w, r, host, body)
	})
}

var errStale = errors.New("slack: request timestamp outside the 5-minute window")

// fresh checks the request timestamp against the channel's clock.
func (c *Channel) fresh(ts string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errStale
	}
	if d := c.now().Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errStale
	}
	return nil
}

// once reports whether key is new. If the store cannot say, the request goes ahead: a decision token
// is single-use anyway, so a duplicate at worst earns an "already decided" reply.
func (c *Channel) once(ctx context.Context, host channel.Host, key string) bool {
	ok, err := host.Once(ctx, key, onceTTL)
	if err != nil {
		c.log.WarnContext(ctx, "slack: dedupe unavailable, handling the request", "error", err)
		return true
	}
	return ok
}

// tap is a decision button press, from HTTP or Socket Mode.
type tap struct {
	token, option, user, actionTS, responseURL string
}

var (
	errMalformed   = errors.New("slack: malformed interaction")
	errUnsupported = errors.New("slack: unsupported interaction type")
	errNoDecision  = errors.New("slack: not a decision button")
	errBadValue    = errors.New("slack: button value is not a token and an option")
)

// parseInteraction decodes a verified interactivity body: the form field payload holding JSON.
func parseInteraction(body []byte) (tap, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return tap{}, errMalformed
	}
	payload := form.Get("payload")
	if payload == "" {
		return tap{}, errMalformed
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return tap{}, errMalformed
	}
	return tapFrom(cb)
}

// tapFrom finds Ony's decision button in a block_actions callback.
func tapFrom(cb slack.InteractionCallback) (tap, error) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return tap{}, errUnsupported
	}
	if cb.User.ID == "" {
		return tap{}, errMalformed
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil || !strings.HasPrefix(a.ActionID, DecideActionPrefix) {
			continue
		}
		t := tap{user: cb.User.ID, actionTS: a.ActionTs, responseURL: cb.ResponseURL}
		if t.actionTS == "" {
			t.actionTS = cb.ActionTs
		}
		var ok bool
		t.token, t.option, ok = strings.Cut(a.Value, "|")
		if !ok || t.token == "" || t.option == "" {
			return t, errBadValue
		}
		return t, nil
	}
	// A console link button: Slack reports the tap, there is nothing to do.
	return tap{}, errNoDecision
}

func (c *Channel) interactions(w http.ResponseWriter, r *http.Request, host channel.Host, body []byte) {
	t, err := parseInteraction(body)
	switch {
	case errors.Is(err, errMalformed), errors.Is(err, errUnsupported):
		http.Error(w, "not an interaction Ony handles", http.StatusBadRequest)
		return
	case errors.Is(err, errNoDecision):
		w.WriteHeader(http.StatusOK)
		return
	}
	// Slack wants its 200 within 3 s and takes nothing from the body: acknowledge first, then decide
	// and answer through response_url, outliving the request's connection.
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), afterAck)
	defer cancel()
	c.act(ctx, host, t, err)
}

// act handles an acknowledged tap, from HTTP or Socket Mode: drop Slack's retries of it, decide, and
// tell the tapper privately. err is errBadValue or nil.
func (c *Channel) act(ctx context.Context, host channel.Host, t tap, err error) {
	if err == nil && t.actionTS != "" && !c.once(ctx, host, "slack:action:"+t.user+":"+t.actionTS) {
		return
	}
	text := "That button is not one Ony can read; decide in the console."
	if err == nil {
		text = c.decide(ctx, host, t)
	}
	c.ephemeral(ctx, t.responseURL, text)
}

// decide spends the tap's token as the member who tapped, and says privately how it went.
func (c *Channel) decide(ctx context.Context, host channel.Host, t tap) string {
	h, err := host.Decide(ctx, channel.Answer{Token: t.token, Option: t.option, Channel: Kind.Name, From: t.user})
	if err != nil {
		return c.refusal(ctx, err)
	}
	label := t.option
	for _, o := range h.Options {
		if o.ID == t.option {
			label = o.Label
		}
	}
	return "Recorded: " + escape(label) + ". The message updates for everyone in a moment."
}

// refusal is what the person sees when Ony refused: a problem's own message, or a generic line.
func (c *Channel) refusal(ctx context.Context, err error) string {
	if p, ok := problem.As(err); ok {
		return escape(p.Message)
	}
	c.log.WarnContext(ctx, "slack: could not record an answer", "error", err)
	return genericFailure
}

// ephemeral answers the tapper alone through the response_url Slack gave with the tap.
func (c *Channel) ephemeral(ctx context.Context, responseURL, text string) {
	if responseURL == "" {
		return
	}
	if !c.responseURLAllowed(responseURL) {
		c.log.WarnContext(ctx, "slack: response_url is not Slack's; not answering")
		return
	}
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text})
	if err := c.postJSON(ctx, responseURL, body); err != nil {
		c.log.WarnContext(ctx, "slack: could not answer the tap", "error", err)
	}
}

// command is a slash command, from HTTP or Socket Mode.
type command struct {
	user, text string
}

func parseCommand(body []byte) (command, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return command{}, errMalformed
	}
	cmd := command{user: form.Get("user_id"), text: form.Get("text")}
	if cmd.user == "" || form.Get("command") == "" {
		return command{}, errMalformed
	}
	return cmd, nil
}

func (c *Channel) commands(w http.ResponseWriter, r *http.Request, host channel.Host, body []byte) {
	cmd, err := parseCommand(body)
	if err != nil {
		http.Error(w, "not a slash command", http.StatusBadRequest)
		return
	}
	text := c.runCommand(r.Context(), host, cmd)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"response_type": "ephemeral", "text": text})
}

// runCommand handles "/ony link <code>"; anything else gets the usage.
func (c *Channel) runCommand(ctx context.Context, host channel.Host, cmd command) string {
	fields := strings.Fields(cmd.text)
	if len(fields) != 2 || !strings.EqualFold(fields[0], "link") {
		return usage
	}
	p, err := host.Link(ctx, fields[1], Kind.Name, cmd.user)
	if err != nil {
		return c.refusal(ctx, err)
	}
	return "Linked to " + escape(p.Name) + " at " + escape(p.Org) + "."
}
