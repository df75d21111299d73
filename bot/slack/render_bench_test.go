package slack

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

// benchNotification is a typical high-risk rung: a redacted gist, two options, a decision token.
var benchNotification = channel.Notification{Key: "k", OrgID: "org", HandoffID: "0193a4d2-8a11-7d3c-8e2f-6a5b4c3d2e1f",
	Action: "db.migrate", Risk: "high", Agent: "deploy-bot",
	Gist:       "Drop the legacy sessions table on prod-eu-1 after the 2026-12 migration; backup taken at 06:00 UTC [REDACTED:aws_key]",
	Options:    []store.Option{{ID: "approve", Label: "Approve"}, {ID: "deny", Label: "Deny"}},
	ConsoleURL: "https://ony.example.com/console/handoffs/0193a4d2-8a11-7d3c-8e2f-6a5b4c3d2e1f", ExpiresAt: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC),
	Recipient: channel.Recipient{UserID: "u", Name: "Mia", Address: "U0123ABCD"}, Token: "ony_dec_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"}

// BenchmarkRender builds and encodes the Block Kit message a rung posts.
func BenchmarkRender(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		blocks, err := notificationBlocks(benchNotification)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(blocks); err != nil {
			b.Fatal(err)
		}
		_ = fallbackText(benchNotification)
	}
}
