// Package slack is the Slack channel: people are reached by their member id, teams in a Slack channel
// (slack:#ops); they decide with Block Kit buttons, and link their account with /ony link <code>.
package slack

import (
	"fmt"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
)

var (
	memberIDRE = lazyregexp.New(`^[UW][A-Z0-9]{2,31}$`)
	channelRE  = lazyregexp.New(`^(#[^\s#,]{1,80}|[CG][A-Z0-9]{6,20})$`)
)

// Contact is a person's Slack member id.
var Contact = &channel.ContactKind{
	Name:  "slack",
	Field: "slack_id",
	Usage: "Slack member id, e.g. U012AB3CD",
	Normalize: func(s string) (string, error) {
		id := strings.TrimSpace(s)
		if !memberIDRE.MatchString(id) {
			return "", fmt.Errorf("%s is not a Slack member id: U or W, then capital letters and digits (e.g. U012AB3CD; Slack shows it under Profile → Copy member ID)",
				channel.QuoteShort(id, 32))
		}
		return id, nil
	},
	Mask: func(s string) string { return s },
}

// Kind reaches people by their member id and teams in a channel; people decide with its buttons.
var Kind = channel.Kind{
	Name:     "slack",
	People:   true,
	Contact:  Contact,
	TeamForm: "slack:<#channel or channel id>",
	Team: func(v string) error {
		if !channelRE.MatchString(v) {
			return fmt.Errorf("slack target %q must name a channel: slack:#name or a channel id such as slack:C0123ABCD", "slack:"+v)
		}
		return nil
	},
	TakesDecisions: true,
	Failover:       true,
}
