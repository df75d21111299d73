package escalation

import (
	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice"
)

// testKinds are the built-in kinds as app wires them (this package's own tests cannot import app;
// app's test checks the two lists agree).
var testKinds = channel.MustKinds(channel.ConsoleKind, webhook.Kind, slack.Kind, telegram.Kind, voice.SMSKind, voice.CallKind)

// parseTarget reads one target as a ladder file would.
func parseTarget(s string) (Target, string) { return (&ladderParser{kinds: testKinds}).target(s) }
