package slack_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
)

// TestSlackEndToEnd runs the Slack channel inside a real server on both databases: a ladder DMs
// the admin, a forged tap changes nothing, a signed one decides as the admin, and the message is
// rewritten with the outcome.
func TestSlackEndToEnd(t *testing.T) {
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
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	ladders := t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "chat.yaml"), []byte(`
name: chat
default: true
steps:
  - channels: [slack, console]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := testserver.Start(t, testserver.Options{Dialect: dialect, Channels: []channel.Channel{ch},
		Configure: func(c *config.Config) { c.Escalation.LaddersDir = ladders }}).Seed(t)
	people := org.Service{Store: in.App.Store, Audit: in.App.Audit, Kinds: in.App.Escalation.Kinds()}
	addr := member
	if _, err := people.UpdateContact(ctx, audit.Actor{Kind: "system", ID: "test"}, in.OrgID, in.Admin.Email,
		org.Contact{Addresses: map[string]*string{"slack": &addr}}); err != nil {
		t.Fatal(err)
	}

	agent := in.Agent(t)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy", Title: "Deploy api v2",
		Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	posted, err := fake.WaitPosted(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := posted[0]
	if m.Channel != member || !strings.Contains(m.BlockText(), "deploy") {
		t.Fatalf("posted to %q: %s", m.Channel, m.BlockText())
	}
	var approve slacktest.Button
	for _, b := range m.Buttons() {
		if b.Style == "primary" {
			approve = b
		}
	}
	if !strings.HasPrefix(approve.Value, "ony_dt_") {
		t.Fatalf("no approve button carrying a token: %+v", m.Buttons())
	}

	hook := in.URL + "/hooks/slack/interactions"
	if resp := fake.Interaction(t, hook, secret, member, approve.Value, slacktest.Forged()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged tap: %d", resp.StatusCode)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != "pending" {
		t.Fatalf("after a forged tap: %+v %v", got, err)
	}
	if resp := fake.Interaction(t, hook, secret, member, approve.Value); resp.StatusCode != http.StatusOK {
		t.Fatalf("tap: %d", resp.StatusCode)
	}
	final, err := agent.Wait(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != "approved" || final.Decision == nil || final.Decision.Channel != "slack" {
		t.Fatalf("the agent got %+v", final)
	}
	rs, err := fake.WaitResponded(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].ResponseType != "ephemeral" || !strings.HasPrefix(rs[0].Text, "Recorded: ") {
		t.Fatalf("answer %+v", rs[0])
	}

	// A second tap of the spent token is told who won, privately.
	if resp := fake.Interaction(t, hook, secret, member, approve.Value); resp.StatusCode != http.StatusOK {
		t.Fatalf("late tap: %d", resp.StatusCode)
	}
	rs, err = fake.WaitResponded(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rs[1].Text, "already approved by Ada Admin via slack") {
		t.Fatalf("late answer %+v", rs[1])
	}

	ups, err := fake.WaitUpdated(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ups[0].Text, "Approved by Ada Admin via slack") || len(ups[0].Buttons()) != 0 {
		t.Fatalf("update %+v", ups[0])
	}
}
