package handoff_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// auditedStepUp requires step-up for high and critical and accepts "123456" once per person,
// recording every audited check it was asked for (as auth/totp.Service.StepUp does).
type auditedStepUp struct {
	mu    sync.Mutex
	spent map[string]bool
	calls []string // userID/risk
}

func (f *auditedStepUp) StepUpRequired(_ context.Context, _, risk string) (bool, error) {
	return risk == "high" || risk == "critical", nil
}

func (f *auditedStepUp) Verify(context.Context, string, string, string) error {
	panic("the audited StepUp must be used when the checker has one")
}

func (f *auditedStepUp) StepUp(_ context.Context, _, userID, risk, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, userID+"/"+risk)
	if code != "123456" || f.spent[userID] {
		return problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
	}
	f.spent[userID] = true
	return nil
}

func (f *auditedStepUp) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type answerEnv struct {
	t      *testing.T
	svc    *handoff.Service
	st     store.Store
	f      storetest.Fixture
	stepUp *auditedStepUp
	people map[string]store.User
}

// newAnswerEnv is an org with ana (member), vic (viewer) and dee (deactivated member), each linked on
// Slack, and a second org whose member is linked on Slack too.
func newAnswerEnv(t *testing.T) *answerEnv {
	t.Helper()
	s := testdb.Open(t, "sqlite")
	kr, err := keyring.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(keys, "ony-test", func(r string) bool { return risk.KnownReason(risk.Reason(r)) }, nil)
	su := &auditedStepUp{spent: map[string]bool{}}
	e := &answerEnv{t: t, st: s, stepUp: su, people: map[string]store.User{},
		svc: handoff.NewService(handoff.Deps{Store: s, Audit: log, Risk: risk.Default(), Keyring: kr, Coord: coord.NewMemory(nil),
			Logger: testdb.Discard, StepUp: su}, handoff.Config{DefaultTimeout: time.Hour})}
	e.f = storetest.NewFixture(t, s, "acme")
	e.person(e.f.Org.ID, "ana", store.RoleMember, true, "UANA")
	e.person(e.f.Org.ID, "vic", store.RoleViewer, true, "UVIC")
	e.person(e.f.Org.ID, "dee", store.RoleMember, false, "UDEE")
	g := storetest.NewFixture(t, s, "globex")
	e.person(g.Org.ID, "out", store.RoleAdmin, true, "UOUT")
	return e
}

func (e *answerEnv) person(orgID, name string, role store.Role, active bool, slackID string) {
	e.t.Helper()
	n := time.Now().UTC()
	u := store.User{OrgID: orgID, ID: uuid.NewString(), Email: name + "@example.com", Name: name, Role: role, Timezone: "UTC",
		Active: active, CreatedAt: n, Contacts: []store.Contact{{Kind: "slack", Address: slackID, VerifiedAt: &n, CreatedAt: n}}}
	if err := e.st.InOrg(context.Background(), orgID, func(tx store.OrgTx) error { return tx.CreateUser(context.Background(), u) }); err != nil {
		e.t.Fatal(err)
	}
	e.people[name] = u
}

// handoff inserts a pending handoff at risk r (options approve, deny) and a token for it sent on
// slack, to the person named (or, when name starts with "#", to that team channel).
func (e *answerEnv) handoff(r, name string) (store.Handoff, string) {
	e.t.Helper()
	ctx := context.Background()
	h := storetest.NewHandoff(e.f.Org.ID, e.f.Device.ID)
	h.Risk = r
	tok, err := auth.NewToken(auth.DecisionTokenPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	dt := store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, Channel: "slack", CreatedAt: time.Now(), ExpiresAt: h.ExpiresAt}
	if strings.HasPrefix(name, "#") {
		dt.Target = "slack:" + name
	} else {
		dt.UserID = e.people[name].ID
	}
	if err := e.st.InOrg(ctx, e.f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.InsertHandoff(ctx, h), tx.CreateDecisionToken(ctx, dt))
	}); err != nil {
		e.t.Fatal(err)
	}
	return h, tok.Plain
}

func (e *answerEnv) status(id string) store.Status {
	e.t.Helper()
	var h store.Handoff
	if err := e.st.InOrg(context.Background(), e.f.Org.ID, func(tx store.OrgTx) (err error) {
		h, err = tx.HandoffByID(context.Background(), id)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return h.Status
}

func slackAnswer(token, option, from string) handoff.Answer {
	return handoff.Answer{Token: token, Option: option, Channel: "slack", From: from, Contact: "slack"}
}

// TestDecideAnswerRefusals: every answer that must not count is refused with its own code and a
// message for the person, and leaves the handoff pending and its token unspent (the right answer
// afterwards still decides).
func TestDecideAnswerRefusals(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		to      string // person or #team
		risk    string
		ans     func(tok string) handoff.Answer
		code    string
		message string // a fragment the person is shown
		right   handoff.Answer
	}{
		{"person token tapped by someone else", "ana", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "approve", "UVIC") },
			"not_recipient", "sent to someone else", slackAnswer("", "approve", "UANA")},
		{"team token from an unlinked account", "#incidents", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "approve", "UNOBODY") },
			"not_linked", "your Slack account is not linked", slackAnswer("", "approve", "UANA")},
		{"team token from another org's member", "#incidents", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "approve", "UOUT") },
			"not_linked", "not linked to a member of this organization", slackAnswer("", "approve", "UANA")},
		{"team token without From", "#incidents", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "approve", "") },
			"not_linked", "not linked", slackAnswer("", "approve", "UANA")},
		{"team token on a kind without contacts", "#incidents", "low",
			func(tok string) handoff.Answer { a := slackAnswer(tok, "approve", "UANA"); a.Contact = ""; return a },
			"not_linked", "not linked", slackAnswer("", "approve", "UANA")},
		{"team token from a viewer", "#incidents", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "deny", "UVIC") },
			"role_cannot_decide", "viewer", slackAnswer("", "deny", "UANA")},
		{"team token from a deactivated member", "#incidents", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "deny", "UDEE") },
			"role_cannot_decide", "deactivated", slackAnswer("", "deny", "UANA")},
		{"person token of a deactivated member", "dee", "low",
			func(tok string) handoff.Answer { return slackAnswer(tok, "deny", "UDEE") },
			"role_cannot_decide", "deactivated", handoff.Answer{}},
		{"approval at a step-up risk from chat", "#incidents", "high",
			func(tok string) handoff.Answer { return slackAnswer(tok, "approve", "UANA") },
			"stepup_required", "approving a high handoff needs the console (or your authenticator code on a call)",
			handoff.Answer{Option: "deny", Channel: "slack", From: "UANA", Contact: "slack"}},
		{"approval at a step-up risk with a wrong code", "ana", "critical",
			func(tok string) handoff.Answer { a := slackAnswer(tok, "approve", "UANA"); a.TOTP = "000000"; return a },
			"invalid_totp", "not valid", handoff.Answer{Option: "approve", Channel: "slack", From: "UANA", Contact: "slack", TOTP: "123456"}},
		{"token sent on another channel", "ana", "low",
			func(tok string) handoff.Answer {
				a := slackAnswer(tok, "approve", "UANA")
				a.Channel = "telegram"
				return a
			},
			"invalid_decision_token", "not valid", slackAnswer("", "approve", "UANA")},
		{"option index past the end", "ana", "low",
			func(tok string) handoff.Answer {
				return handoff.Answer{Token: tok, Index: 3, Channel: "slack", From: "UANA", Contact: "slack"}
			},
			"unknown_option", "", handoff.Answer{Index: 1, Channel: "slack", From: "UANA", Contact: "slack"}},
		{"neither option nor index", "ana", "low",
			func(tok string) handoff.Answer {
				return handoff.Answer{Token: tok, Channel: "slack", From: "UANA", Contact: "slack"}
			},
			"unknown_option", "", handoff.Answer{Index: 2, Channel: "slack", From: "UANA", Contact: "slack"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, tok := e.handoff(c.risk, c.to)
			_, err := e.svc.DecideAnswer(ctx, c.ans(tok))
			p, ok := problem.As(err)
			if !ok || p.Code != c.code || !strings.Contains(p.Message, c.message) {
				t.Fatalf("got %v; want %s with %q", err, c.code, c.message)
			}
			if st := e.status(h.ID); st != store.StatusPending {
				t.Fatalf("refused answer left the handoff %s", st)
			}
			if c.right.Channel == "" {
				return
			}
			right := c.right
			right.Token = tok
			got, err := e.svc.DecideAnswer(ctx, right)
			if err != nil || !got.Status.Final() || got.Decision.ByID != e.people["ana"].ID || got.Decision.Channel != "slack" {
				t.Fatalf("the right answer afterwards: %+v, %v", got.Decision, err)
			}
		})
	}
}

// TestDecideAnswerDecides: a person's token decides as them (From matching, or absent for channels
// that cannot tell), a team token decides as the linked member who tapped, options go by id or
// position, and a keypad's code passes step-up through the audited check for the deciding person.
func TestDecideAnswerDecides(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	ctx := context.Background()
	ana := e.people["ana"]
	for _, c := range []struct {
		name   string
		to     string
		risk   string
		ans    handoff.Answer
		want   store.Status
		option string
	}{
		{"person token from its person", "ana", "low", slackAnswer("", "approve", "UANA"), store.StatusApproved, "approve"},
		{"person token without From", "ana", "low", slackAnswer("", "deny", ""), store.StatusDenied, "deny"},
		{"team token from a linked member", "#incidents", "medium", slackAnswer("", "approve", "UANA"), store.StatusApproved, "approve"},
		{"option by position", "#incidents", "low", handoff.Answer{Index: 2, Channel: "slack", From: "UANA", Contact: "slack"}, store.StatusDenied, "deny"},
		{"option id wins over position", "ana", "low", handoff.Answer{Option: "deny", Index: 1, Channel: "slack", From: "UANA", Contact: "slack"}, store.StatusDenied, "deny"},
		{"denial at a step-up risk needs no code", "#incidents", "critical", slackAnswer("", "deny", "UANA"), store.StatusDenied, "deny"},
		{"approval at a step-up risk with a code", "#incidents", "high",
			handoff.Answer{Option: "approve", Channel: "slack", From: "UANA", Contact: "slack", TOTP: "123456"}, store.StatusApproved, "approve"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, tok := e.handoff(c.risk, c.to)
			ans := c.ans
			ans.Token = tok
			got, err := e.svc.DecideAnswer(ctx, ans)
			if err != nil {
				t.Fatal(err)
			}
			d := got.Decision
			if got.Status != c.want || d.OptionID != c.option || d.ByKind != store.ActorUser || d.ByID != ana.ID || d.ByName != "ana" || d.Channel != "slack" {
				t.Fatalf("decided %s %+v; want %s %s by ana via slack", got.Status, d, c.want, c.option)
			}
			if st := e.status(h.ID); st != c.want {
				t.Fatalf("stored status %s", st)
			}
		})
	}
	if got := e.stepUp.seen(); len(got) != 1 || got[0] != ana.ID+"/high" {
		t.Fatalf("audited step-up checks %v; want one for ana at high", got)
	}
}

// TestDecideAnswerOnce: a spent token answers already_final naming who decided, and never spends a
// step-up code for nothing; a second token of the same handoff does too.
func TestDecideAnswerOnce(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	ctx := context.Background()
	h, tok := e.handoff("high", "#incidents")
	if _, err := e.svc.DecideAnswer(ctx, slackAnswer(tok, "deny", "UANA")); err != nil {
		t.Fatal(err)
	}
	for _, a := range []handoff.Answer{
		slackAnswer(tok, "deny", "UANA"),
		{Token: tok, Option: "approve", Channel: "slack", From: "UANA", Contact: "slack", TOTP: "123456"},
	} {
		_, err := e.svc.DecideAnswer(ctx, a)
		p, ok := problem.As(err)
		if !ok || p.Code != "already_final" || !strings.Contains(p.Message, "denied by ana via slack") {
			t.Fatalf("second use: %v", err)
		}
	}
	if got := e.stepUp.seen(); len(got) != 0 {
		t.Fatalf("a spent token spent a step-up code: %v", got)
	}
	if st := e.status(h.ID); st != store.StatusDenied {
		t.Fatalf("status %s", st)
	}
	for _, bad := range []string{"garbage", "ony_dt_" + strings.Repeat("A", 43)} {
		if _, err := e.svc.DecideAnswer(ctx, slackAnswer(bad, "deny", "UANA")); code(err) != "invalid_decision_token" {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
}
