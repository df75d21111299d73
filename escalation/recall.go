package escalation

import (
	"context"
	"errors"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Recall rebuilds the notification that carried token, for a provider that fetches what to say
// after Notify returned (a call's document, "press 9 to repeat"): the same fields deliver sent, from
// the same function, with the token's recipient. Where in the ladder it was sent is not kept with a
// token, so Key, Climb, Step, StepName and Attempt are left empty. A token that is malformed,
// unknown, spent, expired or sent on another kind is invalid_decision_token; a final handoff answers
// already_final (naming who decided); a person who can no longer decide, role_cannot_decide.
func (e *Engine) Recall(ctx context.Context, token, kindName string) (channel.Notification, error) {
	bad := problem.New(problem.NotFound, "invalid_decision_token", "this decision link is not valid")
	if auth.ParseToken(token, auth.DecisionTokenPrefix) != nil {
		return channel.Notification{}, bad
	}
	var tok store.DecisionToken
	err := e.d.Store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		tok, err = tx.DecisionTokenByHash(ctx, auth.HashToken(token))
		return err
	})
	kind, known := e.kind(kindName)
	if err == nil && (tok.Channel != kindName || !known) {
		err = store.ErrNotFound // sent on another kind: not valid here
	}
	if errors.Is(err, store.ErrNotFound) {
		return channel.Notification{}, bad
	}
	if err != nil {
		return channel.Notification{}, err
	}
	var (
		h     store.Handoff
		rcpt  channel.Recipient
		agent string
	)
	err = e.d.Store.InOrg(ctx, tok.OrgID, func(tx store.OrgTx) (err error) {
		if h, err = tx.HandoffByID(ctx, tok.HandoffID); err != nil || h.Status.Final() {
			return err
		}
		target := tok.UserID
		if target == "" {
			target = tok.Target
		}
		if rcpt, err = e.recipient(ctx, tx, kind, SendArgs{OrgID: tok.OrgID, HandoffID: h.ID, Channel: tok.Channel, Target: target}); err != nil {
			return err
		}
		agent, err = agentName(ctx, tx, h)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return channel.Notification{}, bad
	case errors.Is(err, errCannotDecide):
		return channel.Notification{}, problem.New(problem.Forbidden, "role_cannot_decide", "your Ony account can no longer decide handoffs")
	case err != nil:
		return channel.Notification{}, err
	case h.Status.Final():
		return channel.Notification{}, handoff.AlreadyFinal(h)
	case tok.UsedAt != nil || !e.now().Before(tok.ExpiresAt):
		return channel.Notification{}, bad
	}
	n := e.notification(ctx, h, agent, rcpt, token)
	if l, err := Frozen(h); err == nil {
		n.Ladder = l.Name
	}
	return n, nil
}
