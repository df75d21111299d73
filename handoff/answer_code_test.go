package handoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// Answers by short code (issue 15): an SMS reply names its token only by the 4-digit code the text
// showed, and comes from the sender's phone number.

// phone gives the named person a phone contact.
func (e *answerEnv) phone(orgID, name, number string) {
	e.t.Helper()
	n := time.Now().UTC()
	err := e.st.InOrg(context.Background(), orgID, func(tx store.OrgTx) error {
		return tx.SetContact(context.Background(), store.Contact{UserID: e.people[name].ID, Kind: "phone", Address: number, VerifiedAt: &n, CreatedAt: n})
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// texted inserts a pending handoff at risk r with one token per person named, sent on kind; it
// returns the handoff and the tokens' short codes.
func (e *answerEnv) texted(r, kind string, names ...string) (store.Handoff, []string) {
	e.t.Helper()
	h := storetest.NewHandoff(e.f.Org.ID, e.f.Device.ID)
	h.Risk = r
	var toks []auth.Token
	for range names {
		tok, err := auth.NewToken(auth.DecisionTokenPrefix)
		if err != nil {
			e.t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	return h, e.insertTokens(h, kind, names, toks)
}

func (e *answerEnv) insertTokens(h store.Handoff, kind string, names []string, toks []auth.Token) []string {
	e.t.Helper()
	ctx := context.Background()
	var codes []string
	err := e.st.InOrg(ctx, e.f.Org.ID, func(tx store.OrgTx) error {
		if err := tx.InsertHandoff(ctx, h); err != nil {
			return err
		}
		for i, name := range names {
			codes = append(codes, channel.ShortCode(toks[i].Hash))
			if err := tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: toks[i].Hash, HandoffID: h.ID, UserID: e.people[name].ID,
				Channel: kind, CreatedAt: time.Now(), ExpiresAt: h.ExpiresAt}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return codes
}

func smsAnswer(code, choice, from string) handoff.Answer {
	return handoff.Answer{Code: code, Choice: choice, Channel: "sms", From: from, Contact: "phone"}
}

const anaPhone, vicPhone = "+15550100001", "+15550100002"

// TestDecideAnswerByCode: a reply's code and choice decide as the person the text went to, through
// the same path as a token (the decision says sms), and only from that person's number.
func TestDecideAnswerByCode(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	e.phone(e.f.Org.ID, "ana", anaPhone)
	e.phone(e.f.Org.ID, "vic", vicPhone)
	ctx := context.Background()
	ana := e.people["ana"]
	for _, c := range []struct {
		name, risk, choice string
		want               store.Status
		option             string
	}{
		{"Y approves", "low", channel.ChoiceApprove, store.StatusApproved, "approve"},
		{"N denies", "medium", channel.ChoiceDeny, store.StatusDenied, "deny"},
		{"N denies at a step-up risk", "critical", channel.ChoiceDeny, store.StatusDenied, "deny"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, codes := e.texted(c.risk, "sms", "ana")
			got, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[0], c.choice, anaPhone))
			if err != nil {
				t.Fatal(err)
			}
			d := got.Decision
			if got.ID != h.ID || got.Status != c.want || d.OptionID != c.option || d.ByID != ana.ID || d.Channel != "sms" {
				t.Fatalf("decided %s %s %+v; want %s %s by ana via sms", got.ID, got.Status, d, c.want, c.option)
			}
			if st := e.status(h.ID); st != c.want {
				t.Fatalf("stored status %s", st)
			}
			// The token is spent: the same reply again matches no open token.
			if _, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[0], c.choice, anaPhone)); code(err) != "invalid_code" {
				t.Fatalf("the same reply again: %v", err)
			}
		})
	}
}

// TestDecideAnswerByCodeRefusals: a reply that names no open token of the sender, or one that the
// handoff cannot take, is refused with a message for the sender and changes nothing.
func TestDecideAnswerByCodeRefusals(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	e.phone(e.f.Org.ID, "ana", anaPhone)
	e.phone(e.f.Org.ID, "vic", vicPhone)
	ctx := context.Background()
	other := func(c string) string { return map[bool]string{true: "0001", false: "0000"}[c == "0000"] }
	for _, c := range []struct {
		name    string
		risk    string
		kind    string // the kind the token was sent on
		ans     func(code string) handoff.Answer
		problem string
		message string
	}{
		{"a wrong code", "low", "sms", func(c string) handoff.Answer { return smsAnswer(other(c), "approve", anaPhone) },
			"invalid_code", "that code does not match a message Ony sent to this number"},
		{"another person's number", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c, "approve", vicPhone) },
			"invalid_code", "does not match"},
		{"an unknown number", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c, "approve", "+15550100099") },
			"invalid_code", "does not match"},
		{"no sender", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c, "approve", "") }, "invalid_code", "does not match"},
		{"no contact kind", "low", "sms", func(c string) handoff.Answer { a := smsAnswer(c, "approve", anaPhone); a.Contact = ""; return a },
			"invalid_code", "does not match"},
		{"a malformed code", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c+"1", "approve", anaPhone) },
			"invalid_code", "does not match"},
		{"a code of a call's token", "low", "call", func(c string) handoff.Answer { return smsAnswer(c, "approve", anaPhone) },
			"invalid_code", "does not match"},
		{"no choice", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c, "", anaPhone) }, "unknown_option", ""},
		{"an unknown choice", "low", "sms", func(c string) handoff.Answer { return smsAnswer(c, "maybe", anaPhone) }, "unknown_option", ""},
		{"Y at a step-up risk", "high", "sms", func(c string) handoff.Answer { return smsAnswer(c, "approve", anaPhone) },
			"stepup_required", "needs the console"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, codes := e.texted(c.risk, c.kind, "ana")
			_, err := e.svc.DecideAnswer(ctx, c.ans(codes[0]))
			p, ok := problem.As(err)
			if !ok || p.Code != c.problem || !strings.Contains(p.Message, c.message) {
				t.Fatalf("got %v; want %s with %q", err, c.problem, c.message)
			}
			if st := e.status(h.ID); st != store.StatusPending {
				t.Fatalf("refused reply left the handoff %s", st)
			}
			if c.kind != "sms" {
				return
			}
			// The right reply afterwards still decides: nothing was spent.
			if got, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[0], "deny", anaPhone)); err != nil || got.Status != store.StatusDenied {
				t.Fatalf("the right reply afterwards: %s, %v", got.Status, err)
			}
		})
	}
	if got := e.stepUp.seen(); len(got) != 0 {
		t.Fatalf("a reply without a TOTP code ran a step-up check: %v", got)
	}
}

// TestDecideAnswerByCodeAmbiguous: two open texts to one number that show the same code cannot be
// told apart, so a reply naming it decides neither.
func TestDecideAnswerByCodeAmbiguous(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	e.phone(e.f.Org.ID, "ana", anaPhone)
	ctx := context.Background()
	// Birthday search for two tokens with one code: about 120 tokens on average.
	seen := map[string]auth.Token{}
	var pair []auth.Token
	for pair == nil {
		tok, err := auth.NewToken(auth.DecisionTokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		c := channel.ShortCode(tok.Hash)
		if first, ok := seen[c]; ok {
			pair = []auth.Token{first, tok}
		}
		seen[c] = tok
	}
	h1 := storetest.NewHandoff(e.f.Org.ID, e.f.Device.ID)
	h2 := storetest.NewHandoff(e.f.Org.ID, e.f.Device.ID)
	code1 := e.insertTokens(h1, "sms", []string{"ana"}, pair[:1])[0]
	e.insertTokens(h2, "sms", []string{"ana"}, pair[1:])
	_, err := e.svc.DecideAnswer(ctx, smsAnswer(code1, "deny", anaPhone))
	p, ok := problem.As(err)
	if !ok || p.Code != "ambiguous_code" || !strings.Contains(p.Message, "reply in the console") {
		t.Fatalf("got %v; want ambiguous_code", err)
	}
	if e.status(h1.ID) != store.StatusPending || e.status(h2.ID) != store.StatusPending {
		t.Fatal("an ambiguous reply decided a handoff")
	}
	// Once one is decided (in the console, here by its token), the code names the other alone.
	if _, err := e.svc.DecideAnswer(ctx, handoff.Answer{Token: pair[0].Plain, Option: "deny", Channel: "sms"}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.DecideAnswer(ctx, smsAnswer(code1, "deny", anaPhone)); err != nil || got.ID != h2.ID {
		t.Fatalf("after the other was decided: %s, %v", got.ID, err)
	}
}

// TestDecideAnswerByCodeLate: a reply to a text about a handoff someone else decided meanwhile is
// told who decided, like a late token.
func TestDecideAnswerByCodeLate(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	e.phone(e.f.Org.ID, "ana", anaPhone)
	e.person(e.f.Org.ID, "bob", store.RoleMember, true, "UBOB")
	e.phone(e.f.Org.ID, "bob", "+15550100003")
	ctx := context.Background()
	_, codes := e.texted("low", "sms", "ana", "bob")
	if _, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[0], "approve", anaPhone)); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[1], "deny", "+15550100003"))
	p, ok := problem.As(err)
	if !ok || p.Code != "already_final" || !strings.Contains(p.Message, "approved by ana via sms") {
		t.Fatalf("late reply: %v", err)
	}
}

// TestDecideAnswerByCodeThrottled: guessing codes from one number is cut off long before it could
// find one, and other numbers are not affected.
func TestDecideAnswerByCodeThrottled(t *testing.T) {
	t.Parallel()
	e := newAnswerEnv(t)
	e.phone(e.f.Org.ID, "ana", anaPhone)
	e.phone(e.f.Org.ID, "vic", vicPhone)
	ctx := context.Background()
	var err error
	for i := 0; i < 40 && code(err) != "too_many_attempts"; i++ {
		_, err = e.svc.DecideAnswer(ctx, smsAnswer("0000", "approve", "+15550100099"))
		if c := code(err); c != "invalid_code" && c != "too_many_attempts" {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if p, ok := problem.As(err); !ok || p.Code != "too_many_attempts" || p.RetryAfter <= 0 {
		t.Fatalf("40 guesses from one number: %v; want too_many_attempts", err)
	}
	h, codes := e.texted("low", "sms", "ana")
	if got, err := e.svc.DecideAnswer(ctx, smsAnswer(codes[0], "deny", anaPhone)); err != nil || got.ID != h.ID {
		t.Fatalf("another number after the throttle: %v", err)
	}
}
