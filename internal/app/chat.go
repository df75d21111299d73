package app

import (
	"fmt"
	"log/slog"
	"net/http"
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
	client := func() *http.Client {
		if o.HTTPClient != nil {
			return o.HTTPClient
		}
		return &http.Client{Timeout: timeout}
	}
	if c.Slack.Enabled() {
		s, err = slack.New(slack.Config{BotToken: c.Slack.BotToken.Value(), SigningSecret: c.Slack.SigningSecret.Value(),
			AppToken: c.Slack.AppToken.Value(), APIURL: c.Slack.APIURL, Timeout: timeout, Logger: logger, Clock: o.Clock,
			HTTPClient: client()})
		if err != nil {
			return nil, nil, fmt.Errorf("slack: %w", err)
		}
	}
	if c.Telegram.Enabled() {
		t, err = telegram.New(telegram.Config{BotToken: c.Telegram.BotToken.Value(), WebhookSecret: c.Telegram.WebhookSecret.Value(),
			APIURL: c.Telegram.APIURL, PublicURL: strings.TrimRight(c.PublicURL, "/"), Timeout: timeout, Logger: logger,
			Clock: o.Clock, HTTPClient: client()})
		if err != nil {
			return nil, nil, fmt.Errorf("telegram: %w", err)
		}
	}
	return s, t, nil
}
