package main

// Issue 14's "done when": with only the Slack and Telegram variables set and `ony serve`, the
// built-in ladder posts to (fake) Slack and Telegram, a signed tap decides, a forged or replayed one
// does not, and every message shows the outcome. Telegram runs on long polling (no webhook secret),
// so its taps come in through getUpdates.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
)

func TestDoneWhenChatTapDecides(t *testing.T) {
	t.Parallel()
	const (
		slackToken  = "xoxb-1234-5678-donewhen"
		slackSecret = "done-when-signing-secret"
		tgToken     = "777000:DoneWhenDoneWhenDoneWhen"
	)
	sl := slacktest.New(t, slackToken)
	tg := telegramtest.New(t, tgToken)
	data := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": data,
		"ONY_SLACK_BOT_TOKEN": slackToken, "ONY_SLACK_SIGNING_SECRET": slackSecret, "ONY_SLACK_API_URL": sl.URL(),
		"ONY_TELEGRAM_BOT_TOKEN": tgToken, "ONY_TELEGRAM_API_URL": tg.URL()}
	srv := startServe(t, vars)
	srv.waitReady()
	boot := parseBootstrap(t, srv.Stdout())
	if r := runOny(t, map[string]string{"ONY_DATA_DIR": data}, "", "admin", "set-user", "--org", boot.OrgID, "--email", boot.Email,
		"--slack-id", "UADMIN01", "--telegram-id", "5005"); r.code != 0 {
		t.Fatalf("set-user: %s", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var created struct{ ID string }
	agentDo(t, "POST", srv.URL+"/v1/handoffs", boot.Token, `{"action":"acme.frobnicate","title":"Rotate the widgets"}`, 201, &created)
	posted, err := sl.WaitPosted(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := tg.WaitSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if posted[0].Channel != "UADMIN01" || sent[0].ChatID != 5005 {
		t.Fatalf("posted to %q and chat %d", posted[0].Channel, sent[0].ChatID)
	}
	var approve string
	for _, b := range posted[0].Buttons() {
		if b.Text == "Approve" {
			approve = b.Value
		}
	}
	hook := srv.URL + "/hooks/slack/interactions"
	if r := sl.Interaction(t, hook, slackSecret, "UADMIN01", approve, slacktest.Forged()); r.StatusCode != 401 {
		t.Fatalf("forged tap: %d", r.StatusCode)
	}
	var got struct{ Status string }
	agentDo(t, "GET", srv.URL+"/v1/handoffs/"+created.ID, boot.Token, "", 200, &got)
	if got.Status != "pending" {
		t.Fatalf("after a forged tap: %s", got.Status)
	}
	// The signed tap, kept so it can be replayed byte for byte.
	tap := slacktest.BlockActions("UADMIN01", "ony_decide_0", approve, sl.ResponseURL())
	at := time.Now()
	if r := slacktest.Post(t, hook, slackSecret, tap, slacktest.At(at)); r.StatusCode != 200 {
		t.Fatalf("tap: %d", r.StatusCode)
	}
	agentDo(t, "GET", srv.URL+"/v1/handoffs/"+created.ID+"/wait?timeout=30s", boot.Token, "", 200, &got)
	if got.Status != "approved" {
		t.Fatalf("after the tap: %s", got.Status)
	}
	edited, err := tg.WaitEdited(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	updated, err := sl.WaitUpdated(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(edited[0].Text, "Approved by ") || !strings.Contains(edited[0].Text, "via slack") || edited[0].Keyboard != nil {
		t.Errorf("telegram message now says %q", edited[0].Text)
	}
	if !strings.Contains(updated[0].Text, "via slack") || len(updated[0].Buttons()) != 0 {
		t.Errorf("slack message now says %q", updated[0].Text)
	}
	if _, err := sl.WaitResponded(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if r := slacktest.Post(t, hook, slackSecret, tap, slacktest.At(at)); r.StatusCode != 200 {
		t.Fatalf("replay: %d", r.StatusCode)
	}
	// A tap in Telegram after the decision comes in by long polling and is told who won.
	tg.Queue(tg.Tap(sent[0], "Deny", 5005))
	ans, err := tg.WaitAnswered(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ans[0].Text, "already approved") {
		t.Errorf("late tap answered %q", ans[0].Text)
	}
	// The replay (sent before the Telegram tap that was just answered) was dropped: no second reply.
	if n := len(sl.Responses()); n != 1 {
		t.Errorf("slack got %d replies; the replayed tap was not dropped", n)
	}
	mustNotContain(t, "the server log", srv.Stderr(), slackToken, slackSecret, tgToken, approve)
}
