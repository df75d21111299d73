package org

// The team (issue 13): members listed, invited by link, their roles changed, deactivated and back;
// password resets by emailed link; the organization's settings. Only admins change the team or the
// settings, and every change is audited in the transaction that makes it. Codes, links and passwords
// never enter the log.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Token prefixes of the one-time codes links carry.
const (
	InviteCodePrefix = "ony_inv_"
	ResetCodePrefix  = "ony_rst_"
)

// How long links work.
const (
	InviteTTL = 7 * 24 * time.Hour
	ResetTTL  = time.Hour
)

// Reset requests per email per window: enough for a mistyped mailbox, too few to flood one.
const (
	forgotLimit  = 3
	forgotWindow = 15 * time.Minute
)

// Member is one person as the team view shows them: contacts masked, no password hash.
type Member struct {
	ID           string          `json:"id"`
	Email        string          `json:"email"`
	Name         string          `json:"name"`
	Role         store.Role      `json:"role"`
	Timezone     string          `json:"timezone"`
	Active       bool            `json:"active"`
	CreatedAt    time.Time       `json:"created_at"`
	LastActiveAt *time.Time      `json:"last_active_at"`
	Groups       []string        `json:"groups"`
	Contacts     []MemberContact `json:"contacts"`
}

// MemberContact is a contact as others may see it.
type MemberContact struct {
	Kind     string `json:"kind"`
	Address  string `json:"address"` // masked by the contact kind (a phone as +1•••••••4821)
	Verified bool   `json:"verified"`
}

// Invitation is a created invite: the link (shown to the admin to copy when it was not mailed).
type Invitation struct {
	Link      string
	ExpiresAt time.Time
	Mailed    bool
}

// InviteInfo is what the accept page shows.
type InviteInfo struct {
	OrgID     string
	OrgName   string
	Email     string
	Role      store.Role
	ExpiresAt time.Time
}

// Settings are an organization's own choices.
type Settings struct {
	// StepUpRisks are the risks whose approval needs a TOTP code: a subset of low, medium, high, critical.
	StepUpRisks []string `json:"stepup_risks"`
	// PayloadRetentionDays is 0 (the instance default, retention.payload_days, which may be keep) or 1..3650.
	PayloadRetentionDays int `json:"payload_retention_days"`
}

var riskOrder = []string{"low", "medium", "high", "critical"}

func errAdminOnly() error {
	return problem.New(problem.Forbidden, "admin_only", "only an organization admin may do this")
}

func errMemberNotFound() error {
	return problem.New(problem.NotFound, "user_not_found", "no such person in the organization")
}

func errInviteNotFound() error {
	return problem.New(problem.NotFound, "invite_not_found", "this invite link is not valid: it was used, replaced or has expired")
}

func errResetNotFound() error {
	return problem.New(problem.NotFound, "reset_not_found", "this reset link is not valid: it was used, replaced or has expired")
}

func errLastAdmin() error {
	return problem.New(problem.Conflict, "last_admin", "the organization must keep at least one active admin")
}

// requireAdmin checks, inside tx, that by is an active admin of the org now — not merely when their
// session was resolved.
func requireAdmin(ctx context.Context, tx store.OrgTx, by audit.Actor) error {
	// The system acts for Ony itself (SSO roles from the provider's groups); no request can claim it.
	if by.Kind == string(store.ActorSystem) {
		return nil
	}
	if by.Kind != "user" || by.Role != string(store.RoleAdmin) {
		return errAdminOnly()
	}
	u, err := tx.UserByID(ctx, by.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errAdminOnly()
	}
	if err != nil {
		return err
	}
	if !u.Active || u.Role != store.RoleAdmin {
		return errAdminOnly()
	}
	return nil
}

// member loads a person of the org; a malformed or unknown id is the same not-found.
func member(ctx context.Context, tx store.OrgTx, userID string) (store.User, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return store.User{}, errMemberNotFound()
	}
	u, err := tx.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return u, errMemberNotFound()
	}
	return u, err
}

// activeAdmins counts the org's active admins.
func activeAdmins(ctx context.Context, tx store.OrgTx) (int, error) {
	us, err := tx.ListUsers(ctx)
	n := 0
	for _, u := range us {
		if u.Active && u.Role == store.RoleAdmin {
			n++
		}
	}
	return n, err
}

// inTeam runs fn in orgID's transaction with the org's row locked first, so changes to its people run
// one at a time and each sees every one committed before it: a check across rows (the org keeps an
// active admin) holds, and no change writes back a person read before another change to them.
func (sv Service) inTeam(ctx context.Context, orgID string, fn func(tx store.OrgTx) error) error {
	return sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if _, err := tx.LockOrg(ctx); errors.Is(err, store.ErrNotFound) {
			return errOrgNotFound()
		} else if err != nil {
			return err
		}
		return fn(tx)
	})
}

// Members lists the org's people, by email, with their contacts masked.
func (sv Service) Members(ctx context.Context, orgID string) ([]Member, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return nil, errOrgNotFound()
	}
	var us []store.User
	if err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		if err := orgExists(ctx, tx); err != nil {
			return err
		}
		us, err = tx.ListUsers(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(us))
	for _, u := range us {
		m := Member{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Timezone: u.Timezone, Active: u.Active,
			CreatedAt: u.CreatedAt, LastActiveAt: u.LastActiveAt, Groups: u.Groups, Contacts: []MemberContact{}}
		if m.Groups == nil {
			m.Groups = []string{}
		}
		for _, c := range u.Contacts {
			masked := "•••"
			if sv.Kinds != nil {
				if k, ok := sv.Kinds.Contact(c.Kind); ok {
					masked = k.Mask(c.Address)
				}
			}
			m.Contacts = append(m.Contacts, MemberContact{Kind: c.Kind, Address: masked, Verified: c.VerifiedAt != nil})
		}
		out = append(out, m)
	}
	return out, nil
}

// Invite creates a single-use link for email to join orgID with role (empty: member), superseding
// any earlier open invite for that email. It mails the link when a Sender is set; otherwise (or when
// sending fails) Mailed is false and the admin copies Link.
func (sv Service) Invite(ctx context.Context, by audit.Actor, orgID, email string, role store.Role) (Invitation, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return Invitation{}, errOrgNotFound()
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return Invitation{}, invalidUser([]FieldProblem{{"email", fmt.Sprintf("%s is not an email address", quote(strings.TrimSpace(email), 254))}})
	}
	if role == "" {
		role = store.RoleMember
	}
	if !role.Valid() {
		return Invitation{}, invalidUser([]FieldProblem{{"role", fmt.Sprintf("%s is not a role; use admin, member or viewer", quote(string(role), 32))}})
	}
	// Only an admin learns whether the email is taken on the instance.
	if err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return requireAdmin(ctx, tx, by) }); err != nil {
		return Invitation{}, err
	}
	if err := emailFree(ctx, sv.Store, addr); err != nil {
		return Invitation{}, err
	}
	tok, err := auth.NewToken(InviteCodePrefix)
	if err != nil {
		return Invitation{}, err
	}
	now := sv.now()
	code := store.OneTimeCode{ID: uuid.NewString(), Purpose: store.CodeInvite, Email: addr, Role: role, Hash: tok.Hash,
		CreatedBy: by.ID, CreatedAt: now, ExpiresAt: now.Add(InviteTTL)}
	var orgName string
	err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := requireAdmin(ctx, tx, by); err != nil {
			return err
		}
		o, err := tx.Org(ctx)
		if err != nil {
			return err
		}
		orgName = o.Name
		if _, err := tx.SupersedeCodes(ctx, store.CodeInvite, addr, now); err != nil {
			return err
		}
		if err := tx.CreateCode(ctx, code); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.InviteCreated, At: now, Actor: by,
			Subject: audit.Subject{Kind: "invite", ID: code.ID}, Details: &audit.Details{Role: string(role)}})
		return err
	})
	if err != nil {
		return Invitation{}, err
	}
	out := Invitation{Link: sv.link("invite", tok.Plain), ExpiresAt: code.ExpiresAt}
	if sv.Mail != nil {
		err := sv.Mail.Send(ctx, mail.Message{To: addr, Subject: "You are invited to " + orgName + " on Ony",
			Text: fmt.Sprintf("You have been invited to join %s on Ony as %s.\n\nAccept the invitation and choose a password here:\n\n%s\n\nThe link works once and expires on %s.\nIf you did not expect this, ignore this email.\n",
				orgName, role, out.Link, out.ExpiresAt.Format(time.RFC1123))})
		if err == nil {
			out.Mailed = true
		} else {
			sv.logger().WarnContext(ctx, "invite mail not sent; the admin has the link", "org", orgID, "err", err)
		}
	}
	return out, nil
}

// link is a console URL for a code.
func (sv Service) link(kind, code string) string {
	return strings.TrimRight(sv.PublicURL, "/") + "/console/" + kind + "/" + code
}

// openCode resolves a link's code to its row: well-formed, of purpose, unused and unexpired.
func (sv Service) openCode(ctx context.Context, code, prefix string, purpose store.CodePurpose) (store.OneTimeCode, bool, error) {
	if auth.ParseToken(code, prefix) != nil {
		return store.OneTimeCode{}, false, nil
	}
	var c store.OneTimeCode
	err := sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { c, err = tx.CodeByHash(ctx, auth.HashToken(code)); return err })
	if errors.Is(err, store.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if c.Purpose != purpose || c.UsedAt != nil || !sv.now().Before(c.ExpiresAt) {
		return c, false, nil
	}
	return c, true, nil
}

// InviteInfo describes an open invite for the page that accepts it.
func (sv Service) InviteInfo(ctx context.Context, code string) (InviteInfo, error) {
	c, ok, err := sv.openCode(ctx, code, InviteCodePrefix, store.CodeInvite)
	if err != nil || !ok {
		return InviteInfo{}, errors.Join(err, orNil(!ok && err == nil, errInviteNotFound()))
	}
	var o store.Org
	if err := sv.Store.InOrg(ctx, c.OrgID, func(tx store.OrgTx) (err error) { o, err = tx.Org(ctx); return err }); err != nil {
		return InviteInfo{}, err
	}
	return InviteInfo{OrgID: c.OrgID, OrgName: o.Name, Email: c.Email, Role: c.Role, ExpiresAt: c.ExpiresAt}, nil
}

func orNil(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// AcceptInvite creates the invited person with name and password and uses the code, in one
// transaction: of two accepts of one link, one creates the user and the other is refused.
func (sv Service) AcceptInvite(ctx context.Context, code, name, password string) (store.User, error) {
	c, ok, err := sv.openCode(ctx, code, InviteCodePrefix, store.CodeInvite)
	if err != nil {
		return store.User{}, err
	}
	if !ok {
		return store.User{}, errInviteNotFound()
	}
	var bad []FieldProblem
	name = strings.TrimSpace(name)
	if name == "" {
		name = strings.SplitN(c.Email, "@", 2)[0]
	}
	if p, ok := checkName(name); !ok {
		bad = append(bad, p)
	}
	if err := auth.CheckPasswordPolicy(password); err != nil {
		bad = append(bad, FieldProblem{"password", err.Error()})
	}
	if len(bad) > 0 {
		return store.User{}, invalidUser(bad)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	return sv.join(ctx, c, name, hash)
}

// join uses c and creates its person, with their join audited.
func (sv Service) join(ctx context.Context, c store.OneTimeCode, name, hash string) (store.User, error) {
	now := sv.now()
	u := store.User{OrgID: c.OrgID, ID: uuid.NewString(), Email: c.Email, Name: name, PasswordHash: hash, Role: c.Role,
		Timezone: "UTC", Active: true, CreatedAt: now}
	var orgName string
	err := sv.Store.InOrg(ctx, c.OrgID, func(tx store.OrgTx) error {
		o, err := tx.Org(ctx)
		if err != nil {
			return err
		}
		orgName = o.Name
		ok, err := tx.UseCode(ctx, c.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return errInviteNotFound()
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberJoined, At: now,
			Actor:   audit.Actor{Kind: "user", ID: u.ID, Role: string(u.Role)},
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Details: &audit.Details{Role: string(u.Role)}})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, errEmailTaken()
	}
	if err != nil {
		return store.User{}, err
	}
	u.PasswordHash = ""
	sv.welcome(ctx, u, orgName)
	return u, nil
}

// welcome mails a new member where to sign in and what to set up; it holds no secret, and a relay
// that fails costs the mail, never the join.
func (sv Service) welcome(ctx context.Context, u store.User, orgName string) {
	if sv.Mail == nil {
		return
	}
	err := sv.Mail.Send(ctx, mail.Message{To: u.Email, Subject: "Welcome to " + orgName + " on Ony",
		Text: fmt.Sprintf("Hello %s,\n\nYou are now a member of %s on Ony, as %s. Sign in here:\n\n%s\n\n"+
			"Then open your profile to set up two-factor codes (TOTP): approving high-risk requests needs them.\n",
			u.Name, orgName, u.Role, strings.TrimRight(sv.PublicURL, "/")+"/console/")})
	if err != nil {
		sv.logger().WarnContext(ctx, "welcome mail not sent", "org", u.OrgID)
	}
}

// JoinInvited is single sign-on's first login of an invited email: it uses the newest open invite for
// email (anywhere on the instance) and creates the person, with a random password they never learn
// (they sign in through SSO, or reset it). false, with no error, when there is no open invite.
func (sv Service) JoinInvited(ctx context.Context, email, name string) (store.User, bool, error) {
	addr, err := NormalizeEmail(email)
	if err != nil {
		return store.User{}, false, nil
	}
	var c store.OneTimeCode
	err = sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		c, err = tx.OpenCodeByEmail(ctx, store.CodeInvite, addr, sv.now())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, err
	}
	name = strings.TrimSpace(name)
	if _, ok := checkName(name); !ok {
		name = strings.SplitN(addr, "@", 2)[0]
	}
	pw, err := auth.GeneratePassword()
	if err != nil {
		return store.User{}, false, err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return store.User{}, false, err
	}
	u, err := sv.join(ctx, c, name, hash)
	if err != nil {
		return store.User{}, false, err
	}
	return u, true, nil
}

// SetRole changes a person's role and ends their sessions, so the new role applies at once and a
// demoted admin's open pages stop working. It refuses to leave the org without an active admin.
func (sv Service) SetRole(ctx context.Context, by audit.Actor, orgID, userID string, role store.Role) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	if !role.Valid() {
		return invalidUser([]FieldProblem{{"role", fmt.Sprintf("%s is not a role; use admin, member or viewer", quote(string(role), 32))}})
	}
	now := sv.now()
	return sv.inTeam(ctx, orgID, func(tx store.OrgTx) error {
		if err := requireAdmin(ctx, tx, by); err != nil {
			return err
		}
		u, err := member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if u.Role == role {
			return nil
		}
		if err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberRole, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Details: &audit.Details{Role: string(role)}}); err != nil {
			return err
		}
		u.Role = role
		return saveAndSignOut(ctx, tx, u)
	})
}

// Deactivate switches a person off at once: their sessions end, and login, decisions and chat links
// refuse an inactive person. The row stays (the audit trail points at it). An admin cannot deactivate
// themselves, nor the last active admin.
func (sv Service) Deactivate(ctx context.Context, by audit.Actor, orgID, userID string) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	now := sv.now()
	return sv.inTeam(ctx, orgID, func(tx store.OrgTx) error {
		if err := requireAdmin(ctx, tx, by); err != nil {
			return err
		}
		u, err := member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if u.ID == by.ID {
			return problem.New(problem.Conflict, "cannot_deactivate_self", "you cannot deactivate yourself")
		}
		if !u.Active {
			return nil
		}
		if err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberOff, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: u.ID}}); err != nil {
			return err
		}
		u.Active = false
		return saveAndSignOut(ctx, tx, u)
	})
}

// saveAndSignOut stores a person whose access changed, refuses the change if it left the org without
// an active admin, and ends the person's sessions, so the change holds from their next request.
func saveAndSignOut(ctx context.Context, tx store.OrgTx, u store.User) error {
	if err := tx.UpdateUser(ctx, u); err != nil {
		return err
	}
	if n, err := activeAdmins(ctx, tx); err != nil {
		return err
	} else if n == 0 {
		return errLastAdmin()
	}
	_, err := tx.DeleteUserSessions(ctx, u.ID, nil)
	return err
}

// Reactivate lets a deactivated person sign in again (with their old password).
func (sv Service) Reactivate(ctx context.Context, by audit.Actor, orgID, userID string) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	now := sv.now()
	return sv.inTeam(ctx, orgID, func(tx store.OrgTx) error {
		if err := requireAdmin(ctx, tx, by); err != nil {
			return err
		}
		u, err := member(ctx, tx, userID)
		if err != nil || u.Active {
			return err
		}
		u.Active = true
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberReactivated, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: u.ID}})
		return err
	})
}

// ForgotPassword mails a reset link to email when it belongs to an active person and a Sender is
// set. It answers nil whatever the email — unknown, inactive, malformed, throttled — so the answer says
// nothing about who has an account. Requests are throttled per email (Coord, when set).
func (sv Service) ForgotPassword(ctx context.Context, email string) error {
	addr, err := NormalizeEmail(email)
	if err != nil {
		return nil
	}
	if sv.Coord != nil {
		l, err := sv.Coord.Hit(ctx, "forgot:"+addr, forgotLimit, forgotWindow)
		if err != nil {
			return fmt.Errorf("reset rate limit: %w", err)
		}
		if !l.Allowed {
			return nil
		}
	}
	var u store.User
	err = sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { u, err = tx.UserByEmail(ctx, addr); return err })
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Active) {
		return nil
	}
	if err != nil {
		return err
	}
	tok, err := auth.NewToken(ResetCodePrefix)
	if err != nil {
		return err
	}
	now := sv.now()
	code := store.OneTimeCode{ID: uuid.NewString(), Purpose: store.CodeReset, Email: addr, UserID: u.ID, Hash: tok.Hash,
		CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}
	err = sv.Store.InOrg(ctx, u.OrgID, func(tx store.OrgTx) error {
		if _, err := tx.SupersedeCodes(ctx, store.CodeReset, addr, now); err != nil {
			return err
		}
		if err := tx.CreateCode(ctx, code); err != nil {
			return err
		}
		err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberResetAsked, At: now,
			Actor: audit.Actor{Kind: "system", ID: "password_reset"}, Subject: audit.Subject{Kind: "user", ID: u.ID}})
		return err
	})
	if err != nil {
		return err
	}
	if sv.Mail == nil {
		return nil // without a relay nobody can receive the link; an admin resets with `ony admin`
	}
	link := sv.link("reset", tok.Plain)
	if err := sv.Mail.Send(ctx, mail.Message{To: addr, Subject: "Reset your Ony password",
		Text: fmt.Sprintf("Someone asked to reset the password of your Ony account.\n\nChoose a new password here:\n\n%s\n\nThe link works once and expires in an hour. If it was not you, ignore this email: your password is unchanged.\n", link)}); err != nil {
		sv.logger().WarnContext(ctx, "reset mail not sent", "org", u.OrgID, "user", u.ID, "err", err)
	}
	return nil
}

// ResetWithCode sets a new password through a reset link and ends every session of the person.
func (sv Service) ResetWithCode(ctx context.Context, code, newPassword string) error {
	c, ok, err := sv.openCode(ctx, code, ResetCodePrefix, store.CodeReset)
	if err != nil {
		return err
	}
	if !ok {
		return errResetNotFound()
	}
	if err := auth.CheckPasswordPolicy(newPassword); err != nil {
		return invalidUser([]FieldProblem{{"password", err.Error()}})
	}
	hash, err := auth.HashPassword(newPassword)
	if err != nil {
		return err
	}
	now := sv.now()
	return sv.Store.InOrg(ctx, c.OrgID, func(tx store.OrgTx) error {
		ok, err := tx.UseCode(ctx, c.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			return errResetNotFound()
		}
		u, err := tx.UserByID(ctx, c.UserID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Active) {
			return errResetNotFound()
		}
		if err != nil {
			return err
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, u.ID, nil); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberPasswordReset, At: now,
			Actor: audit.Actor{Kind: "user", ID: u.ID, Role: string(u.Role)}, Subject: audit.Subject{Kind: "user", ID: u.ID}})
		return err
	})
}

// Settings reads the organization's settings.
func (sv Service) Settings(ctx context.Context, orgID string) (Settings, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return Settings{}, errOrgNotFound()
	}
	var o store.Org
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { o, err = tx.Org(ctx); return err })
	if errors.Is(err, store.ErrNotFound) {
		return Settings{}, errOrgNotFound()
	}
	risks := o.StepUpRisks
	if risks == nil {
		risks = []string{}
	}
	return Settings{StepUpRisks: risks, PayloadRetentionDays: o.PayloadRetentionDays}, err
}

// UpdateSettings replaces the organization's settings (admins only); every mistake is reported at once.
func (sv Service) UpdateSettings(ctx context.Context, by audit.Actor, orgID string, s Settings) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	var bad []FieldProblem
	risks := []string{}
	for _, r := range s.StepUpRisks {
		if !slices.Contains(riskOrder, r) {
			bad = append(bad, FieldProblem{"stepup_risks", fmt.Sprintf("%s is not a risk; use low, medium, high or critical", quote(r, 16))})
		}
	}
	for _, r := range riskOrder { // canonical order, duplicates dropped
		if slices.Contains(s.StepUpRisks, r) {
			risks = append(risks, r)
		}
	}
	if s.PayloadRetentionDays < 0 || s.PayloadRetentionDays > 3650 {
		bad = append(bad, FieldProblem{"payload_retention_days", "is 0 (the instance default: retention.payload_days) or 1 to 3650 days"})
	}
	if len(bad) > 0 {
		msgs := make([]string, len(bad))
		for i, p := range bad {
			msgs[i] = p.Field + ": " + p.Message
		}
		e := problem.New(problem.Invalid, "invalid_settings", "%s", strings.Join(msgs, "; "))
		e.Details = bad
		return e
	}
	now := sv.now()
	return sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := requireAdmin(ctx, tx, by); err != nil {
			return err
		}
		if err := tx.UpdateOrgSettings(ctx, risks, s.PayloadRetentionDays); err != nil {
			return err
		}
		err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.OrgSettingsChanged, At: now, Actor: by,
			Subject: audit.Subject{Kind: "org", ID: orgID}})
		return err
	})
}
