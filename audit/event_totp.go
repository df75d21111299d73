package audit

// Second-factor events (issue 13, totp helper): a person enrolled or removed TOTP, and the outcome of a
// step-up check (StepUpFailed is in the main vocabulary). The log never holds a code or a secret.
const (
	MemberTOTPEnrolled EventType = "member.totp_enrolled"
	MemberTOTPDisabled EventType = "member.totp_disabled"
	StepUpPassed       EventType = "stepup.passed"
)

func init() { eventTypes = append(eventTypes, MemberTOTPEnrolled, MemberTOTPDisabled, StepUpPassed) }
