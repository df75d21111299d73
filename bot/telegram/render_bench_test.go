package telegram

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

// BenchmarkRender builds and encodes the HTML text and inline keyboard a rung sends.
func BenchmarkRender(b *testing.B) {
	n := channel.Notification{HandoffID: "0193a4d2-8a11-7d3c-8e2f-6a5b4c3d2e1f", Action: "db.migrate", Risk: "high", Agent: "deploy-bot",
		Gist:       "Drop the legacy sessions table on prod-eu-1 after the 2026-12 migration; backup taken at 06:00 UTC [REDACTED:aws_key]",
		Options:    []store.Option{{ID: "approve", Label: "Approve"}, {ID: "deny", Label: "Deny"}},
		ConsoleURL: "https://ony.example.com/console/handoffs/0193a4d2-8a11-7d3c-8e2f-6a5b4c3d2e1f", ExpiresAt: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC),
		Recipient: channel.Recipient{UserID: "u", Name: "Mia", Address: "123456789"}, Token: "ony_dec_0123456789abcdefghijklmnopq"}
	b.ReportAllocs()
	for b.Loop() {
		text, kb, err := render(n)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(kb); err != nil {
			b.Fatal(err)
		}
		_ = text
	}
}
