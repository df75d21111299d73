package telegram

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/store"
)

// Config configures the Telegram channel.
type Config struct {
	// BotToken is the token BotFather gave; it only ever travels in the request path.
	BotToken string
	// WebhookSecret is the secret_token Telegram echoes in X-Telegram-Bot-Api-Secret-Token. Set, Run
	// registers PublicURL+"/hooks/telegram" as the webhook; unset, Run long-polls getUpdates instead.
	WebhookSecret string
	// APIURL is the Bot API base, default https://api.telegram.org; calls go to {APIURL}/bot{token}/{method}.
	APIURL string
	// PublicURL is where Telegram reaches this server (https://ony.example.com); needed with WebhookSecret.
	PublicURL string
	// Timeout bounds each call to the Bot API (default 10 s); a long poll adds its own wait to it.
	Timeout    time.Duration
	Logger     *slog.Logger
	Clock      func() time.Time
	HTTPClient *http.Client
}

// Channel is the Telegram channel: channel.Channel, channel.Receiver and channel.Runner.
type Channel struct {
	token, secret, base, public string
	timeout                     time.Duration
	log                         *slog.Logger
	clock                       func() time.Time
	client                      *http.Client
	// wait sleeps between retries; tests replace it so a retry_after of seconds takes none.
	wait func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	username string // from getMe, cached once known
}

var (
	tokenRE  = lazyregexp.New(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$`)
	secretRE = lazyregexp.New(`^[A-Za-z0-9_-]{1,256}$`)
)

// New checks cfg and builds the channel. A token or secret that Telegram would refuse is an error
// here, at start, rather than on the first escalation.
func New(cfg Config) (*Channel, error) {
	if !tokenRE.MatchString(cfg.BotToken) {
		return nil, errors.New("telegram: the bot token must look like 123456:ABC-DEF… (as BotFather gives it)")
	}
	if cfg.WebhookSecret != "" {
		if !secretRE.MatchString(cfg.WebhookSecret) {
			return nil, errors.New("telegram: the webhook secret must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
		}
		u, err := url.Parse(cfg.PublicURL)
		if cfg.PublicURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("telegram: a webhook secret needs the server's public https URL (Telegram posts updates only to https)")
		}
	}
	base := cfg.APIURL
	if base == "" {
		base = "https://api.telegram.org"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("telegram: API URL %q is not an http(s) URL", base)
	}
	c := &Channel{
		token: cfg.BotToken, secret: cfg.WebhookSecret, base: strings.TrimRight(base, "/"),
		public: strings.TrimRight(cfg.PublicURL, "/"), timeout: cfg.Timeout, log: cfg.Logger,
		clock: cfg.Clock, client: cfg.HTTPClient, wait: sleep,
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.client == nil {
		c.client = &http.Client{}
	}
	return c, nil
}

func (*Channel) Kind() string     { return Kind.Name }
func (*Channel) Provider() string { return "telegram" }

// The Bot API's shapes, only the fields Ony uses.
type (
	button struct {
		Text         string `json:"text"`
		CallbackData string `json:"callback_data,omitempty"`
		URL          string `json:"url,omitempty"`
	}
	keyboard struct {
		InlineKeyboard [][]button `json:"inline_keyboard"`
	}
	sendMessage struct {
		ChatID      string    `json:"chat_id"`
		Text        string    `json:"text"`
		ParseMode   string    `json:"parse_mode,omitempty"`
		ReplyMarkup *keyboard `json:"reply_markup,omitempty"`
	}
	editMessageText struct {
		ChatID    string `json:"chat_id"`
		MessageID int64  `json:"message_id"`
		Text      string `json:"text"`
	}
	chat struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	}
	user struct {
		ID       int64  `json:"id"`
		IsBot    bool   `json:"is_bot"`
		Username string `json:"username"`
	}
	message struct {
		MessageID int64  `json:"message_id"`
		From      *user  `json:"from"`
		Chat      chat   `json:"chat"`
		Text      string `json:"text"`
	}
)

// maxGist bounds the gist shown, leaving room for the rest of the message and HTML escapes.
const maxGist = 600

// maxAgent bounds the agent's (device's) name shown.
const maxAgent = 100

// maxCallbackData is Telegram's limit on a button's callback_data, in bytes.
const maxCallbackData = 64

var riskEmoji = map[string]string{"low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"}

// render builds the message text (HTML) and keyboard for n: only what Notification holds.
func render(n channel.Notification) (string, *keyboard, error) {
	loc := n.Recipient.Timezone
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	emoji := riskEmoji[n.Risk]
	if emoji == "" {
		emoji = "⚪"
	}
	risk := n.Risk
	if risk != "" {
		risk = strings.ToUpper(risk[:1]) + risk[1:] // risks are lower-case ASCII words
	}
	fmt.Fprintf(&b, "%s <b>%s risk</b> · <code>%s</code>\n", emoji, html.EscapeString(risk), html.EscapeString(n.Action))
	// The gist leads with "[risk] action: ", which the line above already shows.
	gist := strings.TrimPrefix(n.Gist, "["+n.Risk+"] "+n.Action+": ")
	if gist != "" {
		// A gist is short; the cap keeps the message under Telegram's 4096 characters whatever comes.
		b.WriteString(html.EscapeString(truncate(gist, maxGist)) + "\n")
	}
	if n.Agent != "" {
		// The device's name is an admin's words: escaped, and capped like the gist.
		b.WriteString("Asked by " + html.EscapeString(truncate(n.Agent, maxAgent)) + "\n")
	}
	if !n.ExpiresAt.IsZero() {
		b.WriteString("Expires " + html.EscapeString(n.ExpiresAt.In(loc).Format("Mon 2 Jan 15:04 MST")))
	}
	var row []button
	for i, o := range n.Options {
		switch {
		case o.Approves && n.StepUp:
			if n.ConsoleURL != "" {
				row = append(row, button{Text: "Approve in console", URL: n.ConsoleURL})
			}
		case n.Token != "":
			data := n.Token + ":" + strconv.Itoa(i+1)
			if len(data) > maxCallbackData {
				return "", nil, fmt.Errorf("telegram: the decision token is too long for a button (%d bytes, Telegram allows %d)", len(data), maxCallbackData)
			}
			row = append(row, button{Text: o.Label, CallbackData: data})
		}
	}
	kb := &keyboard{}
	if len(row) > 0 {
		kb.InlineKeyboard = append(kb.InlineKeyboard, row)
	}
	if n.ConsoleURL != "" {
		kb.InlineKeyboard = append(kb.InlineKeyboard, []button{{Text: "Open in console", URL: n.ConsoleURL}})
	}
	if len(kb.InlineKeyboard) == 0 {
		kb = nil
	}
	return b.String(), kb, nil
}

// Notify implements channel.Channel: one message with a button per option to a chat.
func (c *Channel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	text, kb, err := render(n)
	if err != nil {
		return channel.Delivery{}, err
	}
	var m message
	if err := c.call(ctx, "sendMessage", sendMessage{ChatID: n.Recipient.Address, Text: text, ParseMode: "HTML", ReplyMarkup: kb}, &m, 0); err != nil {
		return channel.Delivery{}, err
	}
	// The reply's numeric chat id, not the address: a channel named @name is edited by its id too.
	return channel.Delivery{Ref: strconv.FormatInt(m.Chat.ID, 10) + "/" + strconv.FormatInt(m.MessageID, 10), State: store.SendSent}, nil
}

// Update implements channel.Channel: the text becomes the outcome and the buttons go (an edit without
// reply_markup drops the inline keyboard). A message already edited or deleted is not an error.
func (c *Channel) Update(ctx context.Context, u channel.Update) error {
	i := strings.LastIndexByte(u.Ref, '/')
	if i <= 0 {
		return errors.New("telegram: update: the reference is not <chat>/<message>")
	}
	id, err := strconv.ParseInt(u.Ref[i+1:], 10, 64)
	if err != nil {
		return errors.New("telegram: update: the reference is not <chat>/<message>")
	}
	err = c.call(ctx, "editMessageText", editMessageText{ChatID: u.Ref[:i], MessageID: id, Text: u.Text}, nil, 0)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusBadRequest &&
		(strings.Contains(ae.Description, "message is not modified") || strings.Contains(ae.Description, "message to edit not found")) {
		c.log.Debug("telegram update: nothing to rewrite", "reason", ae.Description)
		return nil
	}
	return err
}

// Username is the bot's @username (without @), from getMe, for the console's deep link
// https://t.me/<username>?start=<code>. It is asked once and then cached.
func (c *Channel) Username(ctx context.Context) (string, error) {
	c.mu.Lock()
	name := c.username
	c.mu.Unlock()
	if name != "" {
		return name, nil
	}
	var me user
	if err := c.call(ctx, "getMe", struct{}{}, &me, 0); err != nil {
		return "", err
	}
	if me.Username == "" {
		return "", errors.New("telegram: getMe: the bot has no username")
	}
	c.mu.Lock()
	c.username = me.Username
	c.mu.Unlock()
	return me.Username, nil
}
