package telegram

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
)

// maxUpdate bounds a webhook body; the server's own limit is 1 MiB, and a real update is far smaller.
const maxUpdate = 1 << 20

// dedupeTTL is how long an update_id is remembered: Telegram gives up redelivering within a day.
const dedupeTTL = 24 * time.Hour

// secretHeader carries the webhook's secret_token on every update Telegram posts.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// update is the part of a Bot API update Ony acts on.
type update struct {
	UpdateID      int64          `json:"update_id"`
	Message       *message       `json:"message"`
	CallbackQuery *callbackQuery `json:"callback_query"`
}

type callbackQuery struct {
	ID      string   `json:"id"`
	From    user     `json:"from"`
	Message *message `json:"message"`
	Data    string   `json:"data"`
}

// Routes implements channel.Receiver: POST /hooks/telegram takes the updates Telegram posts.
func (c *Channel) Routes(host channel.Host) []channel.Route {
	return []channel.Route{{Method: http.MethodPost, Path: "", Handler: c.webhook(host)}}
}

func (c *Channel) webhook(host channel.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.secret == "" {
			// Long polling is on: Telegram has no webhook to call, so nobody legitimate posts here.
			http.NotFound(w, r)
			return
		}
		// The secret is the only proof the post is Telegram's: check it before reading anything.
		got := r.Header.Get(secretHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.secret)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxUpdate+1))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if len(body) > maxUpdate {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		u, err := parseUpdate(body)
		if err != nil {
			http.Error(w, "malformed update", http.StatusBadRequest)
			return
		}
		c.dispatch(r.Context(), host, u)
		// Telegram redelivers anything but 200; what was done (or refused) is told in the chat.
		w.WriteHeader(http.StatusOK)
	})
}

// parseUpdate decodes one update as Telegram sends it; an update without an id is malformed.
func parseUpdate(body []byte) (update, error) {
	var u update
	if err := json.Unmarshal(body, &u); err != nil {
		return update{}, fmt.Errorf("telegram: update: %w", err)
	}
	if u.UpdateID <= 0 {
		return update{}, errors.New("telegram: update: no update_id")
	}
	return u, nil
}

// ParseCallbackData splits a button's callback_data, "token:index", as Notify wrote it.
func ParseCallbackData(data string) (token string, index int, err error) {
	i := strings.LastIndexByte(data, ':')
	if i <= 0 || len(data) > maxCallbackData {
		return "", 0, errors.New("telegram: callback data is not token:index")
	}
	n, err := strconv.Atoi(data[i+1:])
	if err != nil || n < 1 || n > 99 || data[i+1] == '+' || data[i+1] == '0' {
		return "", 0, errors.New("telegram: callback data is not token:index")
	}
	return data[:i], n, nil
}

// dispatch acts on one update, from the webhook or a long poll alike. It never fails: whatever
// happened is told to the person in the chat, and the update is not worth a redelivery.
func (c *Channel) dispatch(ctx context.Context, host channel.Host, u update) {
	fresh, err := host.Once(ctx, "telegram:update:"+strconv.FormatInt(u.UpdateID, 10), dedupeTTL)
	switch {
	case err != nil:
		// Without dedupe we still act: a decision token is single-use and a link code too, so a
		// duplicate can only be refused, never counted twice.
		c.log.Warn("telegram: dedupe unavailable, handling the update anyway")
	case !fresh:
		c.log.Debug("telegram: duplicate update dropped")
		return
	}
	switch {
	case u.CallbackQuery != nil:
		c.onCallback(ctx, host, u.CallbackQuery)
	case u.Message != nil:
		c.onMessage(ctx, host, u.Message)
	default:
		c.log.Debug("telegram: update of another type dropped")
	}
}

// genericFailure is shown when the Host failed for a reason that is not the person's to know.
const genericFailure = "Ony could not record that, try the console"

func (c *Channel) onCallback(ctx context.Context, host channel.Host, q *callbackQuery) {
	text, alert := c.decide(ctx, host, q)
	text = truncate(text, maxAnswer) // Telegram refuses longer, and the button would spin on
	// Always answer: until we do, the person's Telegram shows a spinner on the button.
	err := c.call(ctx, "answerCallbackQuery", struct {
		ID        string `json:"callback_query_id"`
		Text      string `json:"text"`
		ShowAlert bool   `json:"show_alert,omitempty"`
	}{q.ID, text, alert}, nil, 0)
	if err != nil {
		c.log.Warn("telegram: answerCallbackQuery failed", "err", err)
	}
}

// maxAnswer is the most characters answerCallbackQuery shows.
const maxAnswer = 200

// truncate cuts s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// decide turns a button tap into a decision and says what to tell the tapper.
func (c *Channel) decide(ctx context.Context, host channel.Host, q *callbackQuery) (text string, alert bool) {
	token, index, err := ParseCallbackData(q.Data)
	if err != nil || q.From.ID <= 0 {
		return "This button is not one of Ony's, or no longer valid", true
	}
	h, err := host.Decide(ctx, channel.Answer{Token: token, Index: index, Channel: Kind.Name, From: strconv.FormatInt(q.From.ID, 10)})
	if err != nil {
		return c.refusal(err, "decide"), true
	}
	label := "Your answer"
	if index <= len(h.Options) {
		label = h.Options[index-1].Label
	}
	return label + " — recorded", false
}

// refusal is what to tell a person when the Host said no: a problem's message is meant for them;
// any other error may quote a URL with the bot token in it, so not even the log gets its text.
func (c *Channel) refusal(err error, what string) string {
	if p, ok := problem.As(err); ok {
		return p.Message
	}
	c.log.Warn("telegram: host failed", "op", what)
	return genericFailure
}

const help = "Hi, I am Ony. I send the handoffs you are asked to decide here, with a button per answer.\n" +
	"To link this chat to your Ony account, open the Telegram link in the console (Settings → Telegram), " +
	"or send /link followed by the code it shows."

func (c *Channel) onMessage(ctx context.Context, host channel.Host, m *message) {
	fields := strings.Fields(m.Text)
	if m.From == nil || m.From.IsBot || len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return
	}
	cmd, to, addressed := strings.Cut(fields[0], "@")
	if addressed && !c.isMe(ctx, to) {
		return // another bot's command
	}
	if m.Chat.Type != "private" {
		// In a group, answer only commands addressed to this bot, and never link there: the code
		// would be visible to everyone in the group.
		if addressed {
			c.reply(ctx, m.Chat.ID, "Link your account in a private chat with me, not in a group.")
		}
		return
	}
	switch {
	case (cmd == "/start" || cmd == "/link") && len(fields) == 2:
		p, err := host.Link(ctx, fields[1], Kind.Name, strconv.FormatInt(m.From.ID, 10))
		if err != nil {
			c.reply(ctx, m.Chat.ID, c.refusal(err, "link"))
			return
		}
		c.reply(ctx, m.Chat.ID, "Linked to "+p.Name+" at "+p.Org+". Ony will send your handoffs here.")
	default:
		c.reply(ctx, m.Chat.ID, help)
	}
}

// isMe reports whether name is this bot's username; when getMe cannot say, it is not.
func (c *Channel) isMe(ctx context.Context, name string) bool {
	me, err := c.Username(ctx)
	if err != nil {
		c.log.Warn("telegram: getMe failed", "err", err)
		return false
	}
	return strings.EqualFold(name, me)
}

func (c *Channel) reply(ctx context.Context, chatID int64, text string) {
	if err := c.call(ctx, "sendMessage", sendMessage{ChatID: strconv.FormatInt(chatID, 10), Text: text}, nil, 0); err != nil {
		c.log.Warn("telegram: reply failed", "err", err)
	}
}
