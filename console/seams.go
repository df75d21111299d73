package console

import (
	"context"
	"net/http"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/store"
)

// The interfaces below are what other parts of issue 13 build; the lead wires them (usually through
// a small adapter over auth/totp, auth/session and org). A nil one makes its page or field say the
// feature is not configured; the core flows work without any of them.

// TOTPLogin is the second sign-in step. Challenge inspects the error Login returned: when it asks for
// a TOTP code it returns the challenge to carry to the TOTP form. Finish completes the sign-in.
type TOTPLogin interface {
	Challenge(err error) (challenge string, ok bool)
	Finish(ctx context.Context, challenge, code, clientAddr, userAgent string) (token string, expires time.Time, err error)
}

// StepUp says whether approving a handoff of this risk needs a TOTP code (auth/totp.Service).
type StepUp interface {
	StepUpRequired(ctx context.Context, orgID, risk string) (bool, error)
}

// DecideFunc records a decision with its step-up code (handoff.Service.DecideStepUp). Nil means
// handoff.Service.Decide, without a code.
type DecideFunc func(ctx context.Context, a handoff.Actor, id, optionID, comment, channel, totp string) (store.Handoff, error)

// Member is one person of the team as the Team page shows them.
type Member struct {
	ID, Email, Name string
	Role            store.Role
	Active          bool
	LastActiveAt    *time.Time
	Contacts        []string // masked, e.g. "sms +1•••••••4821", "slack linked"
}

// Invitation is a new invite: the link (shown when mail is off) and whether it was mailed.
type Invitation struct {
	Link      string
	ExpiresAt time.Time
	Mailed    bool
}

// Team is org's member management (org.Service: Members, Invite, SetRole, Deactivate, Reactivate).
// by is the acting admin's user id.
type Team interface {
	Members(ctx context.Context, orgID string) ([]Member, error)
	Invite(ctx context.Context, orgID, by, email string, role store.Role) (Invitation, error)
	SetRole(ctx context.Context, orgID, by, userID string, role store.Role) error
	Deactivate(ctx context.Context, orgID, by, userID string) error
	Reactivate(ctx context.Context, orgID, by, userID string) error
}

// OrgSettings are the organization's settings shown on the Settings page.
type OrgSettings struct {
	StepUpRisks          []string
	PayloadRetentionDays int // 0 = keep
}

// Settings reads and changes them (org.Service.Settings, UpdateSettings).
type Settings interface {
	Settings(ctx context.Context, orgID string) (OrgSettings, error)
	UpdateSettings(ctx context.Context, orgID, by string, s OrgSettings) error
}

// Provider is a configured notification provider and its health; never its secrets.
type Provider struct {
	Kind, Name, Health string
}

// Providers lists them.
type Providers interface {
	Providers(ctx context.Context, orgID string) ([]Provider, error)
}

// ProfileInfo is the signed-in person's own profile. Read, Phone is masked and Links are the chat
// accounts linked to the person (read-only here). Written, Phone is a new number ("" keeps the
// current one) and RemovePhone removes it; a number set here is unverified.
type ProfileInfo struct {
	Name, Email, Timezone string
	QuietStart, QuietEnd  string // "22:00", "07:00"; empty = none
	Phone                 string
	PhoneVerified         bool
	RemovePhone           bool
	Links                 []string // "slack U012AB3CD"
}

// Profile reads and changes it.
type Profile interface {
	Profile(ctx context.Context, orgID, userID string) (ProfileInfo, error)
	UpdateProfile(ctx context.Context, orgID, userID string, p ProfileInfo) error
}

// Enrollment is a started TOTP enrolment: the QR image (PNG) and the secret for manual entry.
type Enrollment struct {
	Secret string
	QRPNG  []byte
}

// TOTPEnrolment is auth/totp's enrolment (Begin, Confirm, Disable, Enrolled).
type TOTPEnrolment interface {
	Enrolled(ctx context.Context, orgID, userID string) (bool, error)
	Begin(ctx context.Context, orgID, userID, account string) (Enrollment, error)
	Confirm(ctx context.Context, orgID, userID, code string) error
	Disable(ctx context.Context, orgID, userID, code string) error
}

// SessionInfo is one of a person's sessions; PublicID names it, never the secret.
type SessionInfo struct {
	PublicID   string
	CreatedAt  time.Time
	LastSeenAt *time.Time
	UserAgent  string
	Current    bool
}

// SessionList is auth/session's List and Revoke; currentToken marks the caller's own session.
type SessionList interface {
	List(ctx context.Context, orgID, userID, currentToken string) ([]SessionInfo, error)
	Revoke(ctx context.Context, orgID, userID, publicID string) error
}

// InviteInfo is what the accept page shows.
type InviteInfo struct {
	OrgName, Email string
	Role           store.Role
}

// Invites accepts an invite (org.Service.InviteInfo, AcceptInvite) and signs the new person in
// (session.Service.Issue): token is the new session id.
type Invites interface {
	InviteInfo(ctx context.Context, code string) (InviteInfo, error)
	Accept(ctx context.Context, code, name, password, clientAddr, userAgent string) (token string, expires time.Time, err error)
}

// Recovery is the forgotten-password flow (org.Service.ForgotPassword, ResetWithCode).
type Recovery interface {
	ForgotPassword(ctx context.Context, email string) error
	ResetWithCode(ctx context.Context, code, newPassword string) error
}

// SSO is single sign-on (auth/oidc, through internal/app). Begin answers with the redirect to the
// identity provider (next: where to land afterwards). Finish handles the provider's redirect back:
// it checks the flow, resolves the member and starts a session; its problem errors are written for
// people (unknown account, deactivated, provider refused).
type SSO interface {
	Begin(w http.ResponseWriter, r *http.Request, next string) error
	Finish(w http.ResponseWriter, r *http.Request, clientAddr string) (token string, expires time.Time, next string, err error)
}

// Eraser deletes the organization for good (org.Service.EraseOrg): only for an active admin who typed
// its exact name and a valid TOTP code; an admin without TOTP is told to turn it on first.
type Eraser interface {
	OrgName(ctx context.Context, orgID string) (string, error)
	Erase(ctx context.Context, orgID, by, typedName, code string) error
}

// ChatAccount is one chat app the signed-in person can link (issue 14): Slack, Telegram.
type ChatAccount struct {
	Kind, Label string // "slack", "Slack"
	Linked      bool
	// ByEmail: the app can find the person by their email (Slack's users.lookupByEmail).
	ByEmail bool
}

// LinkStart is a started link: a one-time code (10 minutes, once) and how to use it — a command to
// type in the app (Slack: /ony link <code>) or a link that opens it (Telegram's deep link).
type LinkStart struct {
	Code    string
	Expires time.Time
	Command string
	URL     string
}

// ChatLinks links and unlinks the person's own chat accounts. Every change is audited.
type ChatLinks interface {
	Accounts(ctx context.Context, orgID, userID string) ([]ChatAccount, error)
	StartLink(ctx context.Context, orgID, userID, kind string) (LinkStart, error)
	LinkByEmail(ctx context.Context, orgID, userID, kind string) error
	Unlink(ctx context.Context, orgID, userID, kind string) error
}

// PhoneVerify verifies the signed-in person's own phone number (issue 15: org.Service's
// StartPhoneVerification and ConfirmPhone): Send texts a six-digit code to it, Confirm checks the
// code typed back. Both are throttled and audited by the service; their problems read as sentences.
type PhoneVerify interface {
	Send(ctx context.Context, orgID, userID string) error
	Confirm(ctx context.Context, orgID, userID, code string) error
}
