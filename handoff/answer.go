package handoff

// Answers from channels without sessions (issue 14): a chat button, an SMS reply, a keypad choice.
// Every rule that decides whether the answer counts runs before anything is written.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Answer is what someone sent back on a channel without sessions. It mirrors channel.Answer, plus
// the contact the channel's kind reaches people on, so this package need not know channels.
type Answer struct {
	// Token is the decision token the notification carried.
	Token string
	// Option is the option's id; when empty, Index is its 1-based position.
	Option string
	Index  int
	// Channel is the kind the answer came in on; a token sent on another kind is not valid here.
	Channel string
	// From is who answered, as their address on Contact: a Slack member id, a Telegram user id, a
	// phone number. A person's token decides only when From is empty or that person's address; a
	// team token decides as the member whose Contact address From is.
	From string
	// Contact is the name of the contact kind the channel reaches people on ("slack", "phone"); empty
	// when the kind has none, and then From is not checked (and a team token cannot decide).
	Contact string
	// TOTP is a second-factor code the channel collected (a keypad); empty from chat, where approving
	// at a step-up risk is then refused with stepup_required.
	TOTP string
	// Code, instead of Token, is the short code a notification showed (channel.ShortCode of its
	// token's hash): with From and Contact it finds that token among the open ones sent to From on
	// Channel. SMS replies carry no token, only this.
	Code string
	// Choice, when Option and Index are empty, picks an option by what it does:
	// channel.ChoiceApprove is the first option that approves, channel.ChoiceDeny the first that does not.
	Choice string
}

// DecideAnswer records an answer that carries a single-use decision token: the one path every
// channel's decisions take, with the console's role checks, first-decision-wins rule and audit leaf.
// A token is bound to one handoff and the channel it was sent on, and either to one person (who must
// be the one answering, by From) or to a team destination (whoever answers decides as the linked
// member they are). It is spent in the same transaction as the decision, so it decides at most once.
// A token for a handoff decided already answers already_final, naming who decided and how. An SMS
// reply names its token by short code (Answer.Code) and its option by Choice; see tokenByCode.
func (s *Service) DecideAnswer(ctx context.Context, ans Answer) (store.Handoff, error) {
	bad := problem.New(problem.NotFound, "invalid_decision_token", "this decision link is not valid")
	var (
		tok store.DecisionToken
		err error
	)
	if ans.Token == "" && ans.Code != "" {
		tok, err = s.tokenByCode(ctx, ans)
		if err != nil {
			return store.Handoff{}, err
		}
	} else {
		if auth.ParseToken(ans.Token, auth.DecisionTokenPrefix) != nil {
			return store.Handoff{}, bad
		}
		err = s.store.InSystem(ctx, func(tx store.SystemTx) (err error) {
			tok, err = tx.DecisionTokenByHash(ctx, auth.HashToken(ans.Token))
			return err
		})
	}
	if err == nil && tok.Channel != ans.Channel {
		err = store.ErrNotFound // sent on another channel: not valid here
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Handoff{}, bad
	}
	if err != nil {
		return store.Handoff{}, err
	}
	hash := tok.Hash

	var (
		u store.User
		h store.Handoff
	)
	err = s.store.InOrg(ctx, tok.OrgID, func(tx store.OrgTx) (err error) {
		if u, err = s.answerer(ctx, tx, tok, ans); err != nil {
			return err
		}
		h, err = tx.HandoffByID(ctx, tok.HandoffID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Handoff{}, bad
	}
	if err != nil {
		return store.Handoff{}, err
	}
	if !u.Active {
		return store.Handoff{}, problem.New(problem.Forbidden, "role_cannot_decide", "your Ony account is deactivated, so it cannot decide handoffs")
	}
	if !u.Role.CanDecide() {
		return store.Handoff{}, problem.New(problem.Forbidden, "role_cannot_decide", "your role (%s) can view handoffs but not decide them", u.Role)
	}
	optionID := pickOption(h.Options, ans)
	a := Actor{OrgID: tok.OrgID, Kind: store.ActorUser, ID: u.ID, Name: u.Name, Role: u.Role}
	// Step-up is checked only while the answer could still count: a decided handoff or a spent token
	// is answered by finish (already_final, decision_token_used) without spending a TOTP code.
	if opt, ok := findOption(h.Options, optionID); ok && opt.Approves && !h.Status.Final() && tok.UsedAt == nil {
		if err := s.answerStepUp(ctx, a, h.Risk, ans.TOTP); err != nil {
			return store.Handoff{}, err
		}
	}
	return s.finish(ctx, tok.OrgID, tok.HandoffID, func(tx store.OrgTx, h store.Handoff) (store.Status, store.Decision, error) {
		opt, st, err := choose(h, optionID)
		if err != nil {
			return "", store.Decision{}, err
		}
		fresh, err := tx.UseDecisionToken(ctx, hash, s.clock())
		if err != nil {
			return "", store.Decision{}, err
		}
		if !fresh {
			return "", store.Decision{}, problem.New(problem.Conflict, "decision_token_used", "this decision link was already used or has expired")
		}
		return st, store.Decision{OptionID: opt.ID, ByKind: store.ActorUser, ByID: u.ID, ByName: u.Name, Channel: tok.Channel}, nil
	}, a)
}

// codeReplyLimit is how many short-code replies one address may send in an hour: far more than
// anyone answers, far too few to guess a code among 10,000.
const codeReplyLimit = 30

// tokenByCode finds the token an SMS reply's short code names: among the open tokens sent on the
// answer's channel to a person whose contact is the sender's address, the one whose code matches.
// Codes are 4 digits, so two open tokens of one number may share one: such a reply decides nothing.
func (s *Service) tokenByCode(ctx context.Context, ans Answer) (store.DecisionToken, error) {
	noMatch := problem.New(problem.NotFound, "invalid_code", "that code does not match a message Ony sent to this number")
	if ans.Contact == "" || ans.From == "" || len(ans.Code) != 4 {
		return store.DecisionToken{}, noMatch
	}
	if s.coord != nil {
		// A 4-digit code could be guessed by texting many replies; the key holds a digest, not the number.
		sum := sha256.Sum256([]byte(ans.Contact + "\x00" + ans.From))
		l, err := s.coord.Hit(ctx, "answer-code:"+hex.EncodeToString(sum[:16]), codeReplyLimit, time.Hour)
		if err != nil {
			return store.DecisionToken{}, fmt.Errorf("code reply rate limit: %w", err)
		}
		if !l.Allowed {
			p := problem.New(problem.RateLimited, "too_many_attempts", "too many replies from this number; decide in the console")
			p.RetryAfter = l.RetryAfter
			return store.DecisionToken{}, p
		}
	}
	var open []store.DecisionToken
	err := s.store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		open, err = tx.OpenDecisionTokensTo(ctx, ans.Contact, ans.From, ans.Channel, s.clock())
		return err
	})
	if err != nil {
		return store.DecisionToken{}, err
	}
	var found []store.DecisionToken
	for _, t := range open {
		if channel.ShortCode(t.Hash) == ans.Code {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return store.DecisionToken{}, noMatch
	case 1:
		return found[0], nil
	}
	return store.DecisionToken{}, problem.New(problem.Conflict, "ambiguous_code",
		"that code matches more than one message Ony sent to this number: reply in the console")
}

// pickOption is the id of the option an answer chose: by id, by 1-based position, or by what it
// does (Choice). "" when it names none, which choose then refuses.
func pickOption(opts []store.Option, ans Answer) string {
	switch {
	case ans.Option != "":
		return ans.Option
	case ans.Index >= 1 && ans.Index <= len(opts):
		return opts[ans.Index-1].ID
	case ans.Index != 0:
		return ""
	}
	switch ans.Choice {
	case channel.ChoiceApprove, channel.ChoiceDeny:
		for _, o := range opts {
			if o.Approves == (ans.Choice == channel.ChoiceApprove) {
				return o.ID
			}
		}
	}
	return ""
}

// answerer is the person an answer decides as: the token's own person, if the answer came from
// their address; or, for a team token, the member whose contact the answer came from.
func (s *Service) answerer(ctx context.Context, tx store.OrgTx, tok store.DecisionToken, ans Answer) (store.User, error) {
	if tok.UserID != "" {
		u, err := tx.UserByID(ctx, tok.UserID)
		if err != nil {
			return u, err
		}
		if ans.Contact != "" && ans.From != "" {
			if c, ok := u.Contact(ans.Contact); !ok || c.Address != ans.From {
				return u, problem.New(problem.Forbidden, "not_recipient", "this message was sent to someone else")
			}
		}
		return u, nil
	}
	notLinked := problem.New(problem.Forbidden, "not_linked",
		"your %s account is not linked to a member of this organization: link it from your profile in the Ony console, then try again",
		displayName(ans.Channel))
	if ans.Contact == "" || ans.From == "" {
		return store.User{}, notLinked
	}
	u, err := tx.UserByContact(ctx, ans.Contact, ans.From)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return u, notLinked
	}
	return u, err
}

// answerStepUp is the step-up check for an approving answer: without a code the person is sent to
// the console; with one (a keypad), the step-up service verifies it for them, audited and once.
func (s *Service) answerStepUp(ctx context.Context, a Actor, risk, code string) error {
	if s.stepUp == nil {
		return nil
	}
	required, err := s.stepUp.StepUpRequired(ctx, a.OrgID, risk)
	if err != nil || !required {
		return err
	}
	if code == "" {
		return problem.New(problem.Forbidden, "stepup_required", "approving a %s handoff needs the console (or your authenticator code on a call)", risk)
	}
	return s.verifyStepUp(ctx, a, risk, code)
}

// displayName is a channel kind as people write it in a sentence ("slack" → "Slack").
func displayName(kind string) string {
	if kind == "" {
		return "chat"
	}
	return strings.ToUpper(kind[:1]) + kind[1:]
}
