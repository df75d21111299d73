package handoff

// Step-up for approvals (issue 13, totp helper): approving a handoff whose risk the org names needs a
// fresh TOTP code from the person deciding. Denials never do: refusing is always safe.

import (
	"context"
	"errors"

	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// StepUpChecker is the second factor as decisions need it (auth/totp.Service).
type StepUpChecker interface {
	StepUpRequired(ctx context.Context, orgID, risk string) (bool, error)
	Verify(ctx context.Context, orgID, userID, code string) error
}

// stepUpAuditor is a checker that also records the outcome in the audit log (auth/totp.Service does).
type stepUpAuditor interface {
	StepUp(ctx context.Context, orgID, userID, risk, code string) error
}

func errStepUpRequired() error {
	return problem.New(problem.Forbidden, "stepup_required", "approving at this risk needs a code from your authenticator app (totp)")
}

// DecideStepUp is Decide with the person's TOTP code: an approving option on a handoff whose risk
// requires step-up is refused with "stepup_required" without a code, and with the code's own error
// when it is wrong, before anything is recorded. Decide is DecideStepUp without a code.
func (s *Service) DecideStepUp(ctx context.Context, a Actor, id, optionID, comment, channel, totp string) (store.Handoff, error) {
	if s.stepUp != nil && a.Kind == store.ActorUser && a.Role.CanDecide() {
		if err := s.checkStepUp(ctx, a, id, optionID, totp); err != nil {
			return store.Handoff{}, err
		}
	}
	return s.decide(ctx, a, id, optionID, comment, channel)
}

func (s *Service) checkStepUp(ctx context.Context, a Actor, id, optionID, code string) error {
	var h store.Handoff
	// A read: decide re-reads the handoff in its own transaction, so nothing here needs the write lock.
	err := s.store.ReadOrg(ctx, a.OrgID, func(tx store.OrgTx) (err error) { h, err = tx.HandoffByID(ctx, id); return err })
	if errors.Is(err, store.ErrNotFound) {
		return nil // decide answers not_found the same way as always
	}
	if err != nil {
		return err
	}
	opt, ok := findOption(h.Options, optionID)
	if !ok || !opt.Approves || h.Status.Final() {
		return nil // unknown option, a denial or a decided handoff: decide answers as always
	}
	required, err := s.stepUp.StepUpRequired(ctx, a.OrgID, h.Risk)
	if err != nil || !required {
		return err
	}
	if code == "" {
		return errStepUpRequired()
	}
	return s.verifyStepUp(ctx, a, h.Risk, code)
}

// verifyStepUp checks a's code for an approval at risk, through the audited check when there is one.
func (s *Service) verifyStepUp(ctx context.Context, a Actor, risk, code string) error {
	if au, ok := s.stepUp.(stepUpAuditor); ok {
		return au.StepUp(ctx, a.OrgID, a.ID, risk, code)
	}
	err := s.stepUp.Verify(ctx, a.OrgID, a.ID, code)
	if p, ok := problem.As(err); ok && p.Kind == problem.Unauthorized {
		q := *p
		q.Kind = problem.Forbidden // the session is fine; only the code is not
		return &q
	}
	return err
}
