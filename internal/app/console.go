package app

// The console's seams (console/seams.go) over the real services (issue 13, wire): small adapters, so
// the console keeps its narrow interfaces and its fake-based tests.

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/oidc"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/simulated"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// consoleSeams fills the optional seams of deps from the app's services.
func (a *App) consoleSeams(deps *console.Deps) {
	deps.TOTPLogin = consoleTOTPLogin{a.Sessions}
	deps.StepUp = a.TOTP
	deps.Decide = a.Handoffs.DecideStepUp
	deps.TOTP = consoleTOTP{a.TOTP}
	deps.SessionList = consoleSessions{a.Sessions}
	deps.Settings = consoleSettings{a.Team}
	deps.Team = consoleTeam{a.Team}
	deps.Invites = consoleInvites{a.Team, a.Sessions}
	deps.Recovery = a.Team
	deps.Providers = consoleProviders{a.Escalation.Channels()}
	deps.Profile = consoleProfile{a.Team}
	deps.Eraser = consoleEraser{a.Team, a.TOTP}
	deps.ChatLinks = a.ChatLinks()
	if a.Team.Texter != nil {
		deps.PhoneVerify = consolePhone{a.Team}
	}
	if a.SSO != nil {
		deps.SSO = consoleSSO{a.SSO, a.Sessions, a.Log}
	}
}

// consoleTOTPLogin is the second sign-in step: session.ChallengeFrom and LoginTOTP.
type consoleTOTPLogin struct{ s *session.Service }

func (consoleTOTPLogin) Challenge(err error) (string, bool) { return session.ChallengeFrom(err) }

func (l consoleTOTPLogin) Finish(ctx context.Context, challenge, code, clientAddr, userAgent string) (string, time.Time, error) {
	in, err := l.s.LoginTOTP(ctx, challenge, code, clientAddr, userAgent)
	return in.Token, in.ExpiresAt, err
}

// consoleTOTP is enrolment on the profile page.
type consoleTOTP struct{ t *totp.Service }

func (c consoleTOTP) Enrolled(ctx context.Context, orgID, userID string) (bool, error) {
	return c.t.Enrolled(ctx, orgID, userID)
}

func (c consoleTOTP) Begin(ctx context.Context, orgID, userID, account string) (console.Enrollment, error) {
	e, err := c.t.Begin(ctx, orgID, userID, account)
	return console.Enrollment{Secret: e.Secret, QRPNG: e.QRPNG}, err
}

func (c consoleTOTP) Confirm(ctx context.Context, orgID, userID, code string) error {
	return c.t.Confirm(ctx, orgID, userID, code)
}

func (c consoleTOTP) Disable(ctx context.Context, orgID, userID, code string) error {
	return c.t.Disable(ctx, orgID, userID, code)
}

// consoleSessions is the person's own sessions list.
type consoleSessions struct{ s *session.Service }

func (c consoleSessions) List(ctx context.Context, orgID, userID, currentToken string) ([]console.SessionInfo, error) {
	ss, err := c.s.List(ctx, orgID, userID, currentToken)
	if err != nil {
		return nil, err
	}
	out := make([]console.SessionInfo, len(ss))
	for i, x := range ss {
		seen := x.LastSeenAt
		out[i] = console.SessionInfo{PublicID: x.PublicID, CreatedAt: x.CreatedAt, LastSeenAt: &seen, UserAgent: x.UserAgent, Current: x.Current}
	}
	return out, nil
}

func (c consoleSessions) Revoke(ctx context.Context, orgID, userID, publicID string) error {
	return c.s.Revoke(ctx, orgID, userID, publicID)
}

// adminActor is the acting person of the console's admin-only seams, which carry only the user id.
// org re-reads the person in the same transaction and refuses unless they are an active admin, so
// the role recorded in the audit log is the one that was checked.
func adminActor(by string) audit.Actor {
	return audit.Actor{Kind: string(store.ActorUser), ID: by, Role: string(store.RoleAdmin)}
}

// consoleSettings is the org's settings (step-up policy, retention).
type consoleSettings struct{ o org.Service }

func (c consoleSettings) Settings(ctx context.Context, orgID string) (console.OrgSettings, error) {
	s, err := c.o.Settings(ctx, orgID)
	return console.OrgSettings{StepUpRisks: s.StepUpRisks, PayloadRetentionDays: s.PayloadRetentionDays}, err
}

func (c consoleSettings) UpdateSettings(ctx context.Context, orgID, by string, s console.OrgSettings) error {
	return c.o.UpdateSettings(ctx, adminActor(by), orgID, org.Settings{StepUpRisks: s.StepUpRisks, PayloadRetentionDays: s.PayloadRetentionDays})
}

// consoleTeam is member management; contacts arrive masked by their kinds (a phone as +1•••••••4821).
type consoleTeam struct{ o org.Service }

func (c consoleTeam) Members(ctx context.Context, orgID string) ([]console.Member, error) {
	ms, err := c.o.Members(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]console.Member, len(ms))
	for i, m := range ms {
		cs := make([]string, 0, len(m.Contacts))
		for _, x := range m.Contacts {
			s := x.Kind + " " + x.Address
			if !x.Verified {
				s += " (unverified)"
			}
			cs = append(cs, s)
		}
		out[i] = console.Member{ID: m.ID, Email: m.Email, Name: m.Name, Role: m.Role, Active: m.Active,
			LastActiveAt: m.LastActiveAt, Contacts: cs}
	}
	return out, nil
}

func (c consoleTeam) Invite(ctx context.Context, orgID, by, email string, role store.Role) (console.Invitation, error) {
	inv, err := c.o.Invite(ctx, adminActor(by), orgID, email, role)
	return console.Invitation{Link: inv.Link, ExpiresAt: inv.ExpiresAt, Mailed: inv.Mailed}, err
}

func (c consoleTeam) SetRole(ctx context.Context, orgID, by, userID string, role store.Role) error {
	return c.o.SetRole(ctx, adminActor(by), orgID, userID, role)
}

func (c consoleTeam) Deactivate(ctx context.Context, orgID, by, userID string) error {
	return c.o.Deactivate(ctx, adminActor(by), orgID, userID)
}

func (c consoleTeam) Reactivate(ctx context.Context, orgID, by, userID string) error {
	return c.o.Reactivate(ctx, adminActor(by), orgID, userID)
}

// consoleInvites accepts an invite and signs the new member in at once.
type consoleInvites struct {
	o org.Service
	s *session.Service
}

func (c consoleInvites) InviteInfo(ctx context.Context, code string) (console.InviteInfo, error) {
	i, err := c.o.InviteInfo(ctx, code)
	return console.InviteInfo{OrgName: i.OrgName, Email: i.Email, Role: i.Role}, err
}

func (c consoleInvites) Accept(ctx context.Context, code, name, password, clientAddr, userAgent string) (string, time.Time, error) {
	u, err := c.o.AcceptInvite(ctx, code, name, password)
	if err != nil {
		return "", time.Time{}, err
	}
	in, err := c.s.Issue(ctx, u, clientAddr, userAgent)
	return in.Token, in.ExpiresAt, err
}

// consoleProviders lists the escalation engine's channel providers: kind, name and whether they are
// real or stand-ins. Nothing else about them is read, so no secret can reach the page.
type consoleProviders struct{ reg *channel.Registry }

func (c consoleProviders) Providers(context.Context, string) ([]console.Provider, error) {
	var out []console.Provider
	for _, ch := range c.reg.All() {
		state := "configured"
		if _, sim := ch.(*simulated.Provider); sim {
			state = "simulated"
		}
		out = append(out, console.Provider{Kind: ch.Kind(), Name: ch.Provider(), Health: state})
	}
	return out, nil
}

// consoleSSO is single sign-on for the console: the provider (discovered lazily), the member the
// identity resolves to, and an ordinary session for them.
type consoleSSO struct {
	sso *oidc.Lazy
	s   *session.Service
	log *slog.Logger
}

func errSSOUnavailable() error {
	return problem.New(problem.Unavailable, "sso_unavailable",
		"single sign-on is unavailable right now: the identity provider cannot be reached; try again shortly or sign in with your password")
}

func (c consoleSSO) provider(r *http.Request) (*oidc.Provider, error) {
	p, err := c.sso.Get(r.Context())
	if err != nil {
		c.log.WarnContext(r.Context(), "single sign-on: the identity provider is not reachable", "err", err)
		return nil, errSSOUnavailable()
	}
	return p, nil
}

func (c consoleSSO) Begin(w http.ResponseWriter, r *http.Request, next string) error {
	p, err := c.provider(r)
	if err != nil {
		return err
	}
	p.Begin(w, r, next)
	return nil
}

func (c consoleSSO) Finish(w http.ResponseWriter, r *http.Request, clientAddr string) (string, time.Time, string, error) {
	p, err := c.provider(r)
	if err != nil {
		return "", time.Time{}, "", err
	}
	id, next, err := p.Finish(r.Context(), w, r)
	if err != nil {
		return "", time.Time{}, "", err
	}
	u, err := p.Resolve(r.Context(), id)
	if err != nil {
		return "", time.Time{}, "", err
	}
	in, err := c.s.Issue(r.Context(), u, clientAddr, r.UserAgent())
	return in.Token, in.ExpiresAt, next, err
}

// consoleProfile is the person's own profile over org.Service: a phone set here is unverified
// (UpdateOwnContact), and chat accounts are shown masked by their kinds, read-only.
type consoleProfile struct{ o org.Service }

func (c consoleProfile) Profile(ctx context.Context, orgID, userID string) (console.ProfileInfo, error) {
	u, err := c.o.Person(ctx, orgID, userID)
	if err != nil {
		return console.ProfileInfo{}, err
	}
	p := console.ProfileInfo{Name: u.Name, Email: u.Email, Timezone: u.Timezone}
	p.QuietStart, p.QuietEnd, _ = strings.Cut(u.QuietHours, "-")
	for _, x := range u.Contacts {
		masked := "•••"
		if c.o.Kinds != nil {
			if k, ok := c.o.Kinds.Contact(x.Kind); ok {
				masked = k.Mask(x.Address)
			}
		}
		if x.Kind == voice.Phone.Name {
			p.Phone, p.PhoneVerified = masked, x.VerifiedAt != nil
			continue
		}
		p.Links = append(p.Links, x.Kind+" "+masked)
	}
	return p, nil
}

func (c consoleProfile) UpdateProfile(ctx context.Context, orgID, userID string, p console.ProfileInfo) error {
	quiet := ""
	if p.QuietStart != "" || p.QuietEnd != "" {
		quiet = p.QuietStart + "-" + p.QuietEnd
	}
	ch := org.Contact{Name: &p.Name, Timezone: &p.Timezone, QuietHours: &quiet}
	switch {
	case p.RemovePhone:
		ch.Addresses = map[string]*string{voice.Phone.Name: new(string)}
	case p.Phone != "":
		ch.Addresses = map[string]*string{voice.Phone.Name: &p.Phone}
	}
	_, err := c.o.UpdateOwnContact(ctx, orgID, userID, ch)
	return err
}

// consoleEraser is the danger zone: the organization is erased (org.Service.EraseOrg) only for an
// active admin who typed its exact name and a valid TOTP code, checked here in that order.
type consoleEraser struct {
	o org.Service
	t *totp.Service
}

func (c consoleEraser) OrgName(ctx context.Context, orgID string) (string, error) {
	return c.o.OrgName(ctx, orgID)
}

func (c consoleEraser) Erase(ctx context.Context, orgID, by, typedName, code string) error {
	u, err := c.o.Person(ctx, orgID, by)
	if err != nil || !u.Active || u.Role != store.RoleAdmin {
		if _, isProblem := problem.As(err); err != nil && !isProblem {
			return err
		}
		return problem.New(problem.Forbidden, "admin_only", "only an admin can delete the organization")
	}
	name, err := c.o.OrgName(ctx, orgID)
	if err != nil {
		return err
	}
	if typedName != name {
		return problem.New(problem.Invalid, "erase_name_mismatch", "type the organization's exact name to delete it")
	}
	on, err := c.t.Enrolled(ctx, orgID, by)
	if err != nil {
		return err
	}
	if !on {
		return problem.New(problem.Forbidden, "totp_not_enrolled", "turn on two-factor authentication (TOTP) on your profile first: deleting the organization needs a code")
	}
	if err := c.t.Verify(ctx, orgID, by, code); err != nil {
		if p, ok := problem.As(err); ok && p.Kind == problem.Unauthorized {
			q := *p // the session is fine, the code is not
			q.Kind = problem.Forbidden
			return &q
		}
		return err
	}
	return c.o.EraseOrg(ctx, adminActor(by), orgID)
}

// consolePhone verifies the signed-in person's phone number with a code texted to it (issue 15).
type consolePhone struct{ team org.Service }

func (c consolePhone) Send(ctx context.Context, orgID, userID string) error {
	return c.team.StartPhoneVerification(ctx, actor(userID), orgID, userID)
}

func (c consolePhone) Confirm(ctx context.Context, orgID, userID, code string) error {
	return c.team.ConfirmPhone(ctx, actor(userID), orgID, userID, code)
}
