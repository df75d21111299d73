package slack

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/ony-ai/ony/channel"
)

// Action ids of the buttons Ony posts: a decision button is DecideActionPrefix + its option's
// 1-based position; the others only open the console (Slack still reports their taps, which are
// ignored).
const (
	DecideActionPrefix  = "ony_decide_"
	consoleActionID     = "ony_console"
	consoleApprovePrefx = "ony_console_approve_"
)

// Slack's Block Kit limits that bound what we render.
const (
	maxHeader      = 150
	maxButtonText  = 75
	maxButtonValue = 2000
	maxActions     = 25
	maxSection     = 3000
)

func riskEmoji(risk string) string {
	switch strings.ToLower(risk) {
	case "low":
		return "🟢"
	case "medium":
		return "🟡"
	case "high":
		return "🟠"
	case "critical":
		return "🔴"
	}
	return "⚪"
}

// escape makes agent-derived text inert in mrkdwn: no <!channel>, <@U…> or <url|label> smuggled in.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// maxAgent bounds the agent's (device's) name shown: an admin names it, but it is still not ours.
const maxAgent = 100

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func headline(n channel.Notification) string {
	risk := n.Risk
	if risk == "" {
		risk = "unknown"
	}
	return fmt.Sprintf("%s %s risk: %s", riskEmoji(n.Risk), risk, n.Action)
}

// expiry renders the deadline in each reader's own time zone, with a UTC fallback for clients that
// cannot.
func expiry(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// decisionValue is what a decision button carries back: the token and the option id.
func decisionValue(token, optionID string) string { return token + "|" + optionID }

// notificationBlocks renders only what n holds: risk, action, the redacted gist, the deadline and
// the options.
func notificationBlocks(n channel.Notification) ([]slack.Block, error) {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(headline(n), maxHeader), true, false)),
	}
	if n.Gist != "" {
		blocks = append(blocks, slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, truncate(escape(n.Gist), maxSection), false, false), nil, nil))
	}
	if n.Agent != "" {
		blocks = append(blocks, slack.NewContextBlock("",
			slack.NewTextBlockObject(slack.MarkdownType, "Asked by "+escape(truncate(n.Agent, maxAgent)), false, false)))
	}
	if !n.ExpiresAt.IsZero() {
		blocks = append(blocks, slack.NewContextBlock("",
			slack.NewTextBlockObject(slack.MarkdownType, "Expires "+expiry(n.ExpiresAt), false, false)))
	}
	var els []slack.BlockElement
	if n.Token != "" {
		for i, o := range n.Options {
			if len(els) >= maxActions-1 {
				break // the console decides every option; keep room for its button
			}
			label := slack.NewTextBlockObject(slack.PlainTextType, truncate(o.Label, maxButtonText), true, false)
			if n.StepUp && o.Approves {
				if n.ConsoleURL == "" {
					continue
				}
				els = append(els, slack.NewButtonBlockElement(fmt.Sprintf("%s%d", consoleApprovePrefx, i+1), "",
					slack.NewTextBlockObject(slack.PlainTextType, "Approve in console", true, false)).WithURL(n.ConsoleURL))
				continue
			}
			v := decisionValue(n.Token, o.ID)
			if len(v) > maxButtonValue {
				return nil, fmt.Errorf("slack: option %d's button value is longer than Slack's %d bytes", i+1, maxButtonValue)
			}
			b := slack.NewButtonBlockElement(fmt.Sprintf("%s%d", DecideActionPrefix, i+1), v, label)
			if o.Approves {
				b = b.WithStyle(slack.StylePrimary)
			}
			els = append(els, b)
		}
	}
	if n.ConsoleURL != "" {
		els = append(els, slack.NewButtonBlockElement(consoleActionID, "",
			slack.NewTextBlockObject(slack.PlainTextType, "Open in console", true, false)).WithURL(n.ConsoleURL))
	}
	if len(els) > 0 {
		blocks = append(blocks, slack.NewActionBlock("ony_actions", els...))
	}
	return blocks, nil
}

// fallbackText is the notification's plain text (notifications, screen readers): the same safe
// content as the blocks.
func fallbackText(n channel.Notification) string {
	var b strings.Builder
	b.WriteString(escape(headline(n)))
	if n.Gist != "" {
		b.WriteString("\n" + escape(n.Gist))
	}
	if n.Agent != "" {
		b.WriteString("\nAsked by " + escape(truncate(n.Agent, maxAgent)))
	}
	if !n.ExpiresAt.IsZero() {
		b.WriteString("\nExpires " + n.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if n.ConsoleURL != "" {
		b.WriteString("\nConsole: " + escape(n.ConsoleURL))
	}
	return b.String()
}

// updateBlocks is the final state: the outcome alone, no buttons left to press.
func updateBlocks(text string) []slack.Block {
	return []slack.Block{slack.NewSectionBlock(
		slack.NewTextBlockObject(slack.MarkdownType, truncate(escape(text), maxSection), false, false), nil, nil)}
}
