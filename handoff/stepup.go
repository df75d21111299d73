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
//
// The decision's own transaction reads the handoff first. Only an approval (with a step-up checker
// configured) leaves it, unrecorded, to check the code against the risk it read, and decides again
// once the code is good: a denial, which never needs one, costs one transaction and no extra read.
func (s *Service) DecideStepUp(ctx context.Context, a Actor, id, optionID, comment, channel, totp string) (store.Handoff, error) {
	h, err := s.decide(ctx, a, id, optionID, comment, channel, s.stepUp == nil)
	var first stepUpFirst
	if !errors.As(err, &first) {
		return h, err
	}
	if err := s.checkStepUp(ctx, a, first.risk, totp); err != nil {
		return store.Handoff{}, err
	}
	return s.decide(ctx, a, id, optionID, comment, channel, true)
}

// stepUpFirst leaves a decision's transaction when it found an approval whose step-up has not been
// checked yet, with the risk the check is about.
type stepUpFirst struct{ risk string }

func (stepUpFirst) Error() string { return "handoff: step-up to check before the approval" }

// checkStepUp checks a's code for an approval at risk, when the org requires step-up for it.
func (s *Service) checkStepUp(ctx context.Context, a Actor, risk, code string) error {
	required, err := s.stepUp.StepUpRequired(ctx, a.OrgID, risk)
	if err != nil || !required {
		return err
	}
	if code == "" {
		return errStepUpRequired()
	}
	return s.verifyStepUp(ctx, a, risk, code)
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
