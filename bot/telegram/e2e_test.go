package telegram_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
)

// A handoff climbs to Telegram through the real engine; a forged and a replayed tap decide nothing,
// a tap by the linked admin approves, the agent's wait returns, and the message shows the outcome.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			testEndToEnd(t, d)
		})
	}
}

func testEndToEnd(t *testing.T, dialect string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fake := telegramtest.New(t, botToken)
	ch, err := telegram.New(telegram.Config{BotToken: botToken, WebhookSecret: secret, PublicURL: "https://ony.example.com",
		APIURL: fake.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ladders := t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "chat.yaml"), []byte(`
name: chat
default: true
steps:
  - channels: [telegram, console]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := testserver.Start(t, testserver.Options{Dialect: dialect, Channels: []channel.Channel{ch},
		Configure: func(c *config.Config) { c.Escalation.LaddersDir = ladders }}).Seed(t)
	people := org.Service{Store: in.App.Store, Audit: in.App.Audit, Kinds: in.App.Escalation.Kinds()}
	if _, err := people.UpdateContact(ctx, audit.Actor{Kind: "system", ID: "test"}, in.OrgID, in.Admin.Email,
		org.Contact{Addresses: map[string]*string{"telegram": ptr("555")}}); err != nil {
		t.Fatal(err)
	}

	agent := in.Agent(t)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy", Title: "Deploy api v2", Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := fake.WaitSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := sent[0]
	if m.ChatID != 555 || !strings.Contains(m.Text, "<code>deploy</code>\nDeploy api v2\n") {
		t.Fatalf("message %+v", m)
	}
	hook := in.URL + "/hooks/telegram"
	tap := fake.Tap(m, "Approve", 555)

	// Forged (no secret, wrong secret) and another Telegram user's tap: nothing is decided.
	if resp := telegramtest.Post(t, hook, "", tap); resp.StatusCode != 401 {
		t.Fatalf("no secret: %d", resp.StatusCode)
	}
	if resp := telegramtest.Post(t, hook, "wrong", tap); resp.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	if resp := telegramtest.Post(t, hook, secret, fake.Tap(m, "Approve", 999)); resp.StatusCode != 200 {
		t.Fatalf("stranger: %d", resp.StatusCode)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != "pending" {
		t.Fatalf("after refused taps: %+v %v", got, err)
	}

	if resp := telegramtest.Post(t, hook, secret, tap); resp.StatusCode != 200 {
		t.Fatalf("tap: %d", resp.StatusCode)
	}
	final, err := agent.Wait(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != "approved" || final.Decision == nil || final.Decision.Channel != "telegram" {
		t.Fatalf("the agent got %+v", final)
	}
	ans, err := fake.WaitAnswered(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !ans[0].ShowAlert || ans[1].ShowAlert || ans[1].Text != "Approve — recorded" {
		t.Fatalf("callback answers %+v", ans)
	}
	// Replayed: the same update_id is dropped, so no third answer comes.
	if resp := telegramtest.Post(t, hook, secret, tap); resp.StatusCode != 200 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	ed, err := fake.WaitEdited(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ed[0].Text, "Approved by Ada Admin via telegram") || ed[0].Keyboard != nil {
		t.Fatalf("edited %+v", ed[0])
	}
	if n := len(fake.Answered()); n != 2 {
		t.Fatalf("%d callback answers after a replay", n)
	}
}

func ptr[T any](v T) *T { return &v }
