package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

const (
	e2eSlackToken  = "xoxb-1111-2222-e2etoken"
	e2eSlackSecret = "e2e-signing-secret"
	e2eTGToken     = "424242:E2Ee2eE2Ee2eE2Ee2eE2Ee2e"
	e2eTGSecret    = "e2e_webhook-secret"
)

// chatEnv is an instance whose Slack and Telegram are on through configuration alone, pointed at
// the strict fakes, with a ladder that posts to a person and to a team destination on both.
type chatEnv struct {
	in *testserver.Instance
	sl *slacktest.Server
	tg *telegramtest.Server
}

func startChat(t *testing.T, dialect string, stepUp bool) *chatEnv {
	t.Helper()
	e := &chatEnv{sl: slacktest.New(t, e2eSlackToken), tg: telegramtest.New(t, e2eTGToken)}
	ladders := t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "chat.yaml"), []byte(`
name: chat
default: true
steps:
  - channels: [slack, telegram]
    targets: [role:member, "slack:#incidents", "telegram:-100200300"]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.in = testserver.Start(t, testserver.Options{Dialect: dialect, StepUp: stepUp, Configure: func(c *config.Config) {
		c.PublicURL = "https://ony.test" // Telegram's webhook needs https; the test reaches the listener directly
		c.Escalation.LaddersDir = ladders
		c.Slack = config.Slack{BotToken: e2eSlackToken, SigningSecret: e2eSlackSecret, APIURL: e.sl.URL()}
		c.Telegram = config.Telegram{BotToken: e2eTGToken, WebhookSecret: e2eTGSecret, APIURL: e.tg.URL()}
	}}).Seed(t)
	return e
}

func (e *chatEnv) slackHook(kind string) string { return e.in.URL + "/hooks/slack/" + kind }
func (e *chatEnv) tgHook() string               { return e.in.URL + "/hooks/telegram" }

// link gives a person a chat address the way an admin does (ony admin set-user).
func (e *chatEnv) link(t *testing.T, orgID, email, kind, address string) {
	t.Helper()
	people := org.Service{Store: e.in.App.Store, Audit: e.in.App.Audit, Kinds: e.in.App.Escalation.Kinds()}
	if _, err := people.UpdateContact(context.Background(), audit.Actor{Kind: "system", ID: "test"}, orgID, email,
		org.Contact{Addresses: map[string]*string{kind: &address}}); err != nil {
		t.Fatal(err)
	}
}

func button[B any](t *testing.T, bs []B, label func(B) string, want string) B {
	t.Helper()
	for _, b := range bs {
		if label(b) == want {
			return b
		}
	}
	t.Fatalf("no %q button among %d", want, len(bs))
	var zero B
	return zero
}

func slackLabel(b slacktest.Button) string { return b.Text }
func tgLabel(b telegramtest.Button) string { return b.Text }
func byChannel(ms []slacktest.Message, ch string) slacktest.Message {
	for _, m := range ms {
		if m.Channel == ch {
			return m
		}
	}
	return slacktest.Message{}
}
func byChat(ms []telegramtest.Message, id int64) telegramtest.Message {
	for _, m := range ms {
		if m.ChatID == id && m.Keyboard != nil {
			return m
		}
	}
	return telegramtest.Message{}
}

// TestChatEndToEnd (issue 14) on PostgreSQL, with only configuration turning the channels on: the
// member links Slack with a console code (/ony link) and Telegram with a deep-link code (/start); a
// handoff climbs to both, to the member and to team posts; a viewer, an unlinked user, a deactivated
// member and a member of another org tap and are each told why, privately, deciding nothing; the
// member taps Approve in Slack, the agent's long-poll returns approved, every Slack and Telegram
// message is rewritten with the outcome and no buttons, and a late Telegram tap is told who won.
func TestChatEndToEnd(t *testing.T) {
	t.Parallel()
	e := startChat(t, "postgres", false)
	in := e.in
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	team := in.App.Team
	sys := audit.Actor{Kind: "system", ID: "test"}

	// Linking, as the console starts it and the chat apps finish it.
	code, _, err := team.LinkCode(ctx, audit.Actor{Kind: "user", ID: in.Member.ID}, in.OrgID, "slack")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.sl.Command(t, e.slackHook("commands"), e2eSlackSecret, "UMEMBER1", "link "+code); r.StatusCode != 200 {
		t.Fatalf("/ony link: %d", r.StatusCode)
	}
	code, _, err = team.LinkCode(ctx, audit.Actor{Kind: "user", ID: in.Member.ID}, in.OrgID, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	if r := telegramtest.Post(t, e.tgHook(), e2eTGSecret, e.tg.Command(7001, 7001, "/start "+code)); r.StatusCode != 200 {
		t.Fatalf("/start: %d", r.StatusCode)
	}
	u, err := team.Person(ctx, in.OrgID, in.Member.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := u.Contact("slack"); !ok || c.Address != "UMEMBER1" {
		t.Fatalf("slack not linked: %+v", u.Contacts)
	}
	if c, ok := u.Contact("telegram"); !ok || c.Address != "7001" {
		t.Fatalf("telegram not linked: %+v", u.Contacts)
	}

	// The people who must be refused.
	e.link(t, in.OrgID, in.Viewer.Email, "slack", "UVIEWER1")
	dee := in.AddUser(t, store.RoleMember, "Dee Activated")
	e.link(t, in.OrgID, dee.Email, "slack", "UDEE0001")
	if err := team.Deactivate(ctx, sys, in.OrgID, dee.ID); err != nil {
		t.Fatal(err)
	}
	other, err := team.Create(ctx, sys, org.NewOrg{Name: "Other Co", AdminEmail: "boss@other.test", Password: "another long password"})
	if err != nil {
		t.Fatal(err)
	}
	e.link(t, other.OrgID, "boss@other.test", "slack", "UOTHER01")

	agent := in.Agent(t)
	// The title carries a secret and the payload a canary: chat carries only the redacted gist.
	const secret, canary = "AKIAQ3EGRT7UKLMN4XYZ", "PAYLOAD-CANARY-7731"
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.frobnicate", Title: "Rotate the widgets with " + secret,
		Payload: &client.Payload{Kind: "text", Content: canary}}, "")
	if err != nil {
		t.Fatal(err)
	}
	posted, err := e.sl.WaitPosted(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := e.tg.WaitSent(ctx, 3) // "Linked to …", then the two posts
	if err != nil {
		t.Fatal(err)
	}
	dm, incidents := byChannel(posted, "UMEMBER1"), byChannel(posted, "#incidents")
	tgDM, tgGroup := byChat(sent, 7001), byChat(sent, -100200300)
	if dm.TS == "" || incidents.TS == "" || tgDM.MessageID == 0 || tgGroup.MessageID == 0 {
		t.Fatalf("posts: slack %+v, telegram %+v", posted, sent)
	}
	for _, text := range []string{dm.Text + dm.Blocks, incidents.Text + incidents.Blocks, tgDM.Text, tgGroup.Text} {
		if !strings.Contains(text, "Rotate the widgets") || strings.Contains(text, secret) || strings.Contains(text, canary) {
			t.Errorf("a chat message is not the redacted gist alone: %q", text)
		}
	}
	approveTeam := button(t, incidents.Buttons(), slackLabel, "Approve").Value
	approveDM := button(t, dm.Buttons(), slackLabel, "Approve").Value

	// Refusals: each is told why, privately; nothing is decided.
	refusals := []struct {
		who, value, want string
	}{
		{"UVIEWER1", approveTeam, "viewer"},
		{"USTRANGE", approveTeam, "not linked"},
		{"UDEE0001", approveTeam, "deactivated"},
		{"UOTHER01", approveTeam, "not linked"},
		{"UVIEWER1", approveDM, "someone else"},
	}
	for i, r := range refusals {
		if resp := e.sl.Interaction(t, e.slackHook("interactions"), e2eSlackSecret, r.who, r.value); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", r.who, resp.StatusCode)
		}
		got, err := e.sl.WaitResponded(ctx, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if last := got[len(got)-1]; last.ResponseType != "ephemeral" || !strings.Contains(strings.ToLower(last.Text), r.want) {
			t.Errorf("%s was told %+v, want %q", r.who, last, r.want)
		}
	}
	if resp := telegramtest.Post(t, e.tgHook(), e2eTGSecret, e.tg.Tap(tgGroup, "Approve", 9999)); resp.StatusCode != 200 {
		t.Fatalf("telegram stranger: %d", resp.StatusCode)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != "pending" {
		t.Fatalf("after refused taps: %+v %v", got, err)
	}

	// A forged tap decides nothing either.
	if resp := e.sl.Interaction(t, e.slackHook("interactions"), e2eSlackSecret, "UMEMBER1", approveDM, slacktest.Forged()); resp.StatusCode != 401 {
		t.Fatalf("forged: %d", resp.StatusCode)
	}

	waited := make(chan *client.Handoff, 1)
	go func() {
		got, err := agent.Wait(ctx, h.ID)
		if err != nil {
			t.Error(err)
		}
		waited <- got
	}()
	if resp := e.sl.Interaction(t, e.slackHook("interactions"), e2eSlackSecret, "UMEMBER1", approveDM); resp.StatusCode != 200 {
		t.Fatalf("tap: %d", resp.StatusCode)
	}
	final := <-waited
	if final == nil || final.Status != client.StatusApproved || final.Decision == nil || final.Decision.Channel != "slack" {
		t.Fatalf("the agent got %+v", final)
	}

	// Every message about it now shows the outcome, without buttons.
	edited, err := e.tg.WaitEdited(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range edited {
		if !strings.HasPrefix(m.Text, "Approved by "+in.Member.Name+" via slack") || m.Keyboard != nil {
			t.Errorf("telegram edit %+v", m)
		}
	}
	updated, err := e.sl.WaitUpdated(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range updated {
		if !strings.Contains(m.Text, "Approved by "+in.Member.Name+" via slack") || len(m.Buttons()) != 0 {
			t.Errorf("slack update %+v", m)
		}
	}

	// A late tap in Telegram is told who won.
	if resp := telegramtest.Post(t, e.tgHook(), e2eTGSecret, e.tg.Tap(tgDM, "Deny", 7001)); resp.StatusCode != 200 {
		t.Fatalf("late tap: %d", resp.StatusCode)
	}
	ans, err := e.tg.WaitAnswered(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if last := ans[len(ans)-1]; !strings.Contains(last.Text, "already approved by "+in.Member.Name+" via slack") {
		t.Errorf("late tap answered %+v", last)
	}
}

// TestChatStepUp (issue 14): at a risk the org's step-up policy names, chat offers approval only as a
// link to the console — on Slack and Telegram alike — and a tap forged to approve anyway is refused
// with the reason; denying stays one tap.
func TestChatStepUp(t *testing.T) {
	t.Parallel()
	e := startChat(t, "sqlite", true)
	in := e.in
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.link(t, in.OrgID, in.Member.Email, "slack", "UMEMBER1")
	e.link(t, in.OrgID, in.Member.Email, "telegram", "7001")
	h, _, err := in.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy.apply", Title: "Ship shop 1.42",
		Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Risk != "high" {
		t.Fatalf("risk %s, want high", h.Risk)
	}
	posted, err := e.sl.WaitPosted(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := e.tg.WaitSent(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	dm := byChannel(posted, "UMEMBER1")
	consoleURL := "https://ony.test/console/handoffs/" + h.ID
	if b := button(t, dm.Buttons(), slackLabel, "Approve in console"); b.URL != consoleURL || b.Value != "" {
		t.Errorf("slack approve button %+v", b)
	}
	if b := button(t, byChat(sent, 7001).Buttons(), tgLabel, "Approve in console"); b.URL != consoleURL || b.CallbackData != "" {
		t.Errorf("telegram approve button %+v", b)
	}
	deny := button(t, dm.Buttons(), slackLabel, "Deny").Value
	forged := strings.TrimSuffix(deny, "|deny") + "|approve"
	if r := e.sl.Interaction(t, e.slackHook("interactions"), e2eSlackSecret, "UMEMBER1", forged); r.StatusCode != 200 {
		t.Fatalf("forged approve: %d", r.StatusCode)
	}
	got, err := e.sl.WaitResponded(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got[0].Text, "needs the console") {
		t.Errorf("forged approve answered %q", got[0].Text)
	}
	if r := e.sl.Interaction(t, e.slackHook("interactions"), e2eSlackSecret, "UMEMBER1", deny); r.StatusCode != 200 {
		t.Fatalf("deny: %d", r.StatusCode)
	}
	final, err := in.Agent(t).Wait(ctx, h.ID)
	if err != nil || final.Status != client.StatusDenied {
		t.Fatalf("after deny: %+v %v", final, err)
	}
}

// TestChatLinksWiring (issue 14): the console's chat linking over the real team service and the
// configured channels: a Slack code to type, a Telegram deep link to the bot (its name from getMe),
// Slack's lookup by the member's email, and unlinking; every change is in the audit log without the
// chat id.
func TestChatLinksWiring(t *testing.T) {
	t.Parallel()
	e := startChat(t, "sqlite", false)
	in := e.in
	ctx := context.Background()
	links := in.App.ChatLinks()
	start, err := links.StartLink(ctx, in.OrgID, in.Member.ID, "slack")
	if err != nil || !strings.HasPrefix(start.Command, "/ony link ") || start.URL != "" {
		t.Fatalf("slack link %+v %v", start, err)
	}
	start, err = links.StartLink(ctx, in.OrgID, in.Member.ID, "telegram")
	if err != nil || !strings.HasPrefix(start.URL, "https://t.me/") || !strings.HasSuffix(start.URL, "?start="+start.Code) {
		t.Fatalf("telegram link %+v %v", start, err)
	}
	if err := links.LinkByEmail(ctx, in.OrgID, in.Member.ID, "slack"); err == nil || !strings.Contains(err.Error(), "Slack has no member with your email") {
		t.Fatalf("lookup of an unknown email: %v", err)
	}
	e.sl.AddUser(in.Member.Email, "UFOUND01")
	if err := links.LinkByEmail(ctx, in.OrgID, in.Member.ID, "slack"); err != nil {
		t.Fatal(err)
	}
	accts, err := links.Accounts(ctx, in.OrgID, in.Member.ID)
	if err != nil || len(accts) != 2 || !accts[0].Linked || accts[1].Linked {
		t.Fatalf("accounts %+v %v", accts, err)
	}
	u, _ := in.App.Team.Person(ctx, in.OrgID, in.Member.ID)
	if c, ok := u.Contact("slack"); !ok || c.Address != "UFOUND01" || c.VerifiedAt == nil {
		t.Fatalf("slack contact %+v", u.Contacts)
	}
	if err := links.Unlink(ctx, in.OrgID, in.Member.ID, "slack"); err != nil {
		t.Fatal(err)
	}
	if accts, _ := links.Accounts(ctx, in.OrgID, in.Member.ID); accts[0].Linked {
		t.Error("still linked after unlink")
	}
	if err := links.LinkByEmail(ctx, in.OrgID, in.Member.ID, "telegram"); err == nil {
		t.Error("Telegram looked someone up by email")
	}
	var leaves []string
	if _, err := in.App.Audit.Sequence(ctx, in.App.Store, in.OrgID); err != nil {
		t.Fatal(err)
	}
	err = in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		es, err := tx.AuditLeaves(ctx, 0, 1000)
		for _, l := range es {
			leaves = append(leaves, string(l.Data))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(leaves, "\n")
	if strings.Count(all, `"contact.linked"`) != 1 || strings.Count(all, `"contact.unlinked"`) != 1 || strings.Contains(all, "UFOUND01") {
		t.Errorf("audit leaves:\n%s", all)
	}
}
