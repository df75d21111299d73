// Package telegram is the Telegram channel: people in their private chat with the bot, teams in a
// group or channel (telegram:-1001234), deciding with inline buttons; its own small Bot API client.
package telegram

import (
	"fmt"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
)

var (
	chatIDRE = lazyregexp.New(`^-?[0-9]{1,20}$`)
	chatRE   = lazyregexp.New(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)
)

// Contact is a person's Telegram chat id.
var Contact = &channel.ContactKind{
	Name:  "telegram",
	Field: "telegram_id",
	Usage: "Telegram chat id, e.g. 123456789",
	Normalize: func(s string) (string, error) {
		id := strings.TrimSpace(s)
		if !chatIDRE.MatchString(id) {
			return "", fmt.Errorf("%s is not a Telegram chat id: a number of up to 20 digits (e.g. 123456789), not a @username",
				channel.QuoteShort(id, 32))
		}
		return id, nil
	},
	Mask: func(s string) string { return s },
}

// Kind reaches people in their chat with the bot and teams in a group; people decide with buttons.
var Kind = channel.Kind{
	Name:     "telegram",
	People:   true,
	Contact:  Contact,
	TeamForm: "telegram:<chat id or @channel>",
	Team: func(v string) error {
		if !chatRE.MatchString(v) {
			return fmt.Errorf("telegram target %q must name a chat: a numeric chat id such as telegram:-1001234567890, or telegram:@channelname", "telegram:"+v)
		}
		return nil
	},
	TakesDecisions: true,
	Failover:       true,
}
