package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"log/slog"
	"strings"
	"time"

	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/config"
)

// chatChannels builds the Slack and Telegram channels the configuration turns on (issue 14).
func chatChannels(c *config.Config, logger *slog.Logger, o Options, timeout time.Duration) (*slack.Channel, *telegram.Channel, error) {
	var (
		s   *slack.Channel
		t   *telegram.Channel
		err error
	)
	client := o.providerClient(timeout)
	if c.Slack.Enabled() {
		s, err = slack.New(slack.Config{BotToken: c.Slack.BotToken.Value(), SigningSecret: c.Slack.SigningSecret.Value(),
			AppToken: c.Slack.AppToken.Value(), APIURL: c.Slack.APIURL, Timeout: timeout, Logger: logger, Clock: o.Clock,
			HTTPClient: client, Dialer: o.wsDialer()})
		if err != nil {
			return nil, nil, fmt.Errorf("slack: %w", err)
		}
	}
	if c.Telegram.Enabled() {
		t, err = telegram.New(telegram.Config{BotToken: c.Telegram.BotToken.Value(), WebhookSecret: c.Telegram.WebhookSecret.Value(),
			APIURL: c.Telegram.APIURL, PublicURL: strings.TrimRight(c.PublicURL, "/"), Timeout: timeout, Logger: logger,
			Clock: o.Clock, HTTPClient: client})
		if err != nil {
			return nil, nil, fmt.Errorf("telegram: %w", err)
		}
	}
	return s, t, nil
}

// ChatLinks is the console profile's chat linking; nil when neither Slack nor Telegram is on.
func (a *App) ChatLinks() console.ChatLinks {
	if a.Slack == nil && a.Telegram == nil {
		return nil
	}
	return consoleChat{team: a.Team, slack: a.Slack, telegram: a.Telegram}
}

// consoleChat is the profile's chat linking: one-time codes and unlinking through the team service,
// Slack's lookup by email, Telegram's deep link to the bot.
type consoleChat struct {
	team     org.Service
	slack    *slack.Channel
	telegram *telegram.Channel
}

func (c consoleChat) Accounts(ctx context.Context, orgID, userID string) ([]console.ChatAccount, error) {
	u, err := c.team.Person(ctx, orgID, userID)
	if err != nil {
		return nil, err
	}
	var out []console.ChatAccount
	if c.slack != nil {
		_, linked := u.Contact(slack.Contact.Name)
		out = append(out, console.ChatAccount{Kind: slack.Kind.Name, Label: "Slack", Linked: linked, ByEmail: true})
	}
	if c.telegram != nil {
		_, linked := u.Contact(telegram.Contact.Name)
		out = append(out, console.ChatAccount{Kind: telegram.Kind.Name, Label: "Telegram", Linked: linked})
	}
	return out, nil
}

func (c consoleChat) StartLink(ctx context.Context, orgID, userID, kind string) (console.LinkStart, error) {
	if !c.on(kind) {
		return console.LinkStart{}, errNoChat(kind)
	}
	code, expires, err := c.team.LinkCode(ctx, actor(userID), orgID, kind)
	if err != nil {
		return console.LinkStart{}, err
	}
	out := console.LinkStart{Code: code, Expires: expires}
	switch kind {
	case slack.Kind.Name:
		out.Command = "/ony link " + code
	case telegram.Kind.Name:
		name, err := c.telegram.Username(ctx)
		if err != nil {
			// The code still works typed as /start <code> in the bot's chat.
			out.Command = "/start " + code
			break
		}
		out.URL = "https://t.me/" + name + "?start=" + code
	}
	return out, nil
}

func (c consoleChat) LinkByEmail(ctx context.Context, orgID, userID, kind string) error {
	if kind != slack.Kind.Name || c.slack == nil {
		return problem.New(problem.Invalid, "no_email_lookup", "only Slack can find you by your email")
	}
	u, err := c.team.Person(ctx, orgID, userID)
	if err != nil {
		return err
	}
	id, err := c.slack.LookupByEmail(ctx, u.Email)
	if errors.Is(err, slack.ErrNotFound) {
		return problem.New(problem.Invalid, "not_in_slack", "Slack has no member with your email (%s) confirmed; link with a code instead", u.Email)
	}
	if err != nil {
		return fmt.Errorf("slack lookup: %w", err)
	}
	return c.team.LinkByLookup(ctx, actor(userID), orgID, kind, id)
}

func (c consoleChat) Unlink(ctx context.Context, orgID, userID, kind string) error {
	if !c.on(kind) {
		return errNoChat(kind)
	}
	return c.team.Unlink(ctx, actor(userID), orgID, userID, kind)
}

func (c consoleChat) on(kind string) bool {
	return (kind == slack.Kind.Name && c.slack != nil) || (kind == telegram.Kind.Name && c.telegram != nil)
}

// actor is the signed-in person acting on their own accounts, as audit leaves name them.
func actor(userID string) audit.Actor { return audit.Actor{Kind: string(store.ActorUser), ID: userID} }

func errNoChat(kind string) error {
	return problem.New(problem.Invalid, "chat_not_configured", "%s is not configured on this server", channel.QuoteShort(kind, 32))
}
