package org

// People: adding a member to an organization, and the settings escalation ladders use to reach them
// (their contacts — phone, chat ids, whatever kinds are registered — quiet hours, groups, time zone).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/quiet"
	"github.com/ony-ai/ony/store"
)

var groupRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Bounds that keep one person's settings readable; they are far above any real use.
const (
	maxNameRunes = 100
	maxGroups    = 50
	maxTZBytes   = 64
)

// FieldProblem is one mistake in a person's settings. Field is the snake_case name of the setting
// (name, email, role, timezone, quiet_hours, groups, or a contact's field: phone, slack_id...).
// Message never holds a phone number in full.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problems extracts every field problem from an error CreateUser or UpdateContact returned; nil
// when the error is not about the settings given.
func Problems(err error) []FieldProblem {
	if p, ok := problem.As(err); ok {
		if list, ok := p.Details.([]FieldProblem); ok {
			return list
		}
	}
	return nil
}

// invalidUser reports every problem at once: the message joins them, the details list them.
func invalidUser(list []FieldProblem) error {
	msgs := make([]string, len(list))
	for i, p := range list {
		msgs[i] = p.Field + ": " + p.Message
	}
	e := problem.New(problem.Invalid, "invalid_user", "%s", strings.Join(msgs, "; "))
	e.Details = list
	return e
}

// quote shows a short value in a message; long ones are described instead of echoed.
func quote(s string, limit int) string { return channel.QuoteShort(s, limit) }

// NewUser is a person to add to an organization. Password empty means generate one; Role empty
// means member; Name empty means the part of the email before the @.
type NewUser struct {
	Email    string
	Name     string
	Role     store.Role
	Password string
}

// CreatedUser carries the one-time password (set only when it was generated).
type CreatedUser struct {
	UserID   string
	Email    string
	Name     string
	Role     store.Role
	Password string
}

// CreateUser adds a person to orgID. The audit log records it as member.invited with the role, as it
// does for an organization's first admin.
func (sv Service) CreateUser(ctx context.Context, by audit.Actor, orgID string, n NewUser) (CreatedUser, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return CreatedUser{}, errOrgNotFound()
	}
	var bad []FieldProblem
	email, err := NormalizeEmail(n.Email)
	if err != nil {
		bad = append(bad, FieldProblem{"email", fmt.Sprintf("%s is not an email address", quote(strings.TrimSpace(n.Email), 254))})
	}
	role := n.Role
	if role == "" {
		role = store.RoleMember
	}
	if !role.Valid() {
		bad = append(bad, FieldProblem{"role", fmt.Sprintf("%s is not a role; use admin, member or viewer", quote(string(role), 32))})
	}
	name := strings.TrimSpace(n.Name)
	if name == "" && email != "" {
		name = strings.SplitN(email, "@", 2)[0]
	}
	if p, ok := checkName(name); !ok && (name != "" || email != "") {
		bad = append(bad, p)
	}
	pw := n.Password
	if pw != "" {
		if err := auth.CheckPasswordPolicy(pw); err != nil {
			bad = append(bad, FieldProblem{"password", err.Error()})
		}
	}
	if len(bad) > 0 {
		return CreatedUser{}, invalidUser(bad)
	}
	out := CreatedUser{UserID: uuid.NewString(), Email: email, Name: name, Role: role}
	if pw == "" {
		if pw, err = auth.GeneratePassword(); err != nil {
			return CreatedUser{}, err
		}
		out.Password = pw
	}
	// Refuse a taken email or a missing organization before paying for a password hash; the unique
	// index still decides races.
	if err := emailFree(ctx, sv.Store, email); err != nil {
		return CreatedUser{}, err
	}
	if err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return orgExists(ctx, tx) }); err != nil {
		return CreatedUser{}, err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return CreatedUser{}, err
	}
	now := sv.now()
	err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := orgExists(ctx, tx); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, store.User{ID: out.UserID, Email: email, Name: name, PasswordHash: hash, Role: role,
			Timezone: "UTC", Active: true, CreatedAt: now}); err != nil {
			return err
		}
		err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberInvited, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: out.UserID}, Channel: "system", Details: &audit.Details{Role: string(role)}})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return CreatedUser{}, errEmailTaken()
	}
	if err != nil {
		return CreatedUser{}, err
	}
	return out, nil
}

func errOrgNotFound() error {
	return problem.New(problem.NotFound, "org_not_found", "no such organization")
}

func errUserNotFound() error {
	return problem.New(problem.NotFound, "user_not_found", "no person with this email in the organization")
}

func orgExists(ctx context.Context, tx store.OrgTx) error {
	_, err := tx.Org(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return errOrgNotFound()
	}
	return err
}

// Contact is a change to a person's settings: a nil field is left as it is, a pointer to "" (or to
// an empty list) clears the setting. Timezone cleared is UTC; Name cannot be cleared. Addresses are
// keyed by contact kind (channel.ContactKind.Name: "phone", "slack"...).
type Contact struct {
	Name       *string
	Timezone   *string
	QuietHours *string
	Groups     *[]string
	Addresses  map[string]*string
}

// Empty reports whether the change changes nothing.
func (c Contact) Empty() bool {
	return c.Name == nil && c.Timezone == nil && c.QuietHours == nil && c.Groups == nil && len(c.Addresses) == 0
}

// normalize checks every field of c against the registered contact kinds and returns the cleaned
// values (trimmed, time zone defaulted, groups deduplicated), or every problem found.
func (c Contact) normalize(kinds *channel.Kinds) (Contact, []FieldProblem) {
	var bad []FieldProblem
	add := func(field, format string, args ...any) {
		bad = append(bad, FieldProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	set := func(s string) *string { return &s }
	var out Contact
	if c.Name != nil {
		name := strings.TrimSpace(*c.Name)
		if p, ok := checkName(name); !ok {
			bad = append(bad, p)
		}
		out.Name = set(name)
	}
	if c.Timezone != nil {
		tz := strings.TrimSpace(*c.Timezone)
		if tz == "" {
			tz = "UTC"
		}
		if err := checkTimezone(tz); err != nil {
			add("timezone", "%s is not an IANA time zone name such as Europe/Lisbon or America/New_York", quote(tz, maxTZBytes))
		}
		out.Timezone = set(tz)
	}
	if len(c.Addresses) > 0 {
		out.Addresses = map[string]*string{}
	}
	for _, ck := range contactKinds(kinds) { // in registration order, so problems come in a stable order
		v, ok := c.Addresses[ck.Name]
		if !ok || v == nil {
			continue
		}
		addr := strings.TrimSpace(*v)
		if addr != "" {
			clean, err := ck.Normalize(addr)
			if err != nil {
				add(ck.Field, "%s", err.Error())
			}
			addr = clean
		}
		out.Addresses[ck.Name] = set(addr)
	}
	for name := range c.Addresses {
		if !slices.ContainsFunc(contactKinds(kinds), func(ck *channel.ContactKind) bool { return ck.Name == name }) {
			add(name, "no kind of channel reaches people by %s", quote(name, 32))
		}
	}
	if c.QuietHours != nil {
		q := strings.TrimSpace(*c.QuietHours)
		if _, _, err := quiet.Parse(q); err != nil {
			if len(q) > 32 {
				add("quiet_hours", "%s is not a span of the day such as 22:00-07:00", quote(q, 32))
			} else {
				add("quiet_hours", "%s", err.Error())
			}
		}
		out.QuietHours = set(q)
	}
	if c.Groups != nil {
		gs := []string{}
		for _, g := range *c.Groups {
			g = strings.TrimSpace(g)
			if !groupRE.MatchString(g) {
				add("groups", "group %s must be 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit", quote(g, 64))
				continue
			}
			if !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
		}
		if len(gs) > maxGroups {
			add("groups", "%d groups is too many; a person can be in at most %d", len(gs), maxGroups)
		}
		out.Groups = &gs
	}
	return out, bad
}

func checkName(name string) (FieldProblem, bool) {
	if name == "" || utf8.RuneCountInString(name) > maxNameRunes || strings.ContainsFunc(name, isControl) {
		return FieldProblem{"name", fmt.Sprintf("a name is 1 to %d characters, without control characters", maxNameRunes)}, false
	}
	return FieldProblem{}, true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkTimezone accepts IANA names only: time.LoadLocation also takes "Local" (the server's zone,
// which means nothing to the person) and file paths in some setups.
func checkTimezone(tz string) error {
	if len(tz) > maxTZBytes || tz == "Local" || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") {
		return errors.New("not an IANA name")
	}
	_, err := time.LoadLocation(tz)
	return err
}

// UpdateContact changes the settings of the person with email in orgID, as an operator or admin:
// addresses they set count as verified, since they vouch for them. Every field is checked before
// anything changes, and every problem is reported at once (Problems lists them). No audit event is
// written: the log's closed vocabulary has none for contact settings, and it must never hold phone
// numbers or chat ids. by names who made the change for when it gets one.
func (sv Service) UpdateContact(ctx context.Context, by audit.Actor, orgID, email string, c Contact) (store.User, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return store.User{}, errOrgNotFound()
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return store.User{}, errUserNotFound()
	}
	return sv.updateContact(ctx, orgID, func(u store.User) bool { return u.Email == addr }, c, true)
}

// UpdateOwnContact is UpdateContact by the person themself (the console's profile), with two
// differences (issue 13, wire): an address they set is stored unverified — nobody vouched for it, so
// no SMS or call goes to it until it is verified — and their groups are not theirs to change.
func (sv Service) UpdateOwnContact(ctx context.Context, orgID, userID string, c Contact) (store.User, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return store.User{}, errOrgNotFound()
	}
	c.Groups = nil
	return sv.updateContact(ctx, orgID, func(u store.User) bool { return u.ID == userID }, c, false)
}

// Person returns one person of the org without their password hash (the console's profile).
func (sv Service) Person(ctx context.Context, orgID, userID string) (store.User, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return store.User{}, errOrgNotFound()
	}
	var u store.User
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { u, err = tx.UserByID(ctx, userID); return err })
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errUserNotFound()
	}
	u.PasswordHash = ""
	return u, err
}

// updateContact applies c to the person match picks; vouched stores new addresses as verified.
func (sv Service) updateContact(ctx context.Context, orgID string, match func(store.User) bool, c Contact, vouched bool) (store.User, error) {
	clean, bad := c.normalize(sv.Kinds)
	if len(bad) > 0 {
		return store.User{}, invalidUser(bad)
	}
	var u store.User
	err := sv.inTeam(ctx, orgID, func(tx store.OrgTx) error {
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(users, match)
		if i < 0 {
			return errUserNotFound()
		}
		u = users[i]
		if clean.Name != nil {
			u.Name = *clean.Name
		}
		if clean.Timezone != nil {
			u.Timezone = *clean.Timezone
		}
		if clean.QuietHours != nil {
			u.QuietHours = *clean.QuietHours
		}
		if clean.Groups != nil {
			u.Groups = *clean.Groups
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return setAddresses(ctx, tx, &u, clean.Addresses, sv.now(), vouched)
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errUserNotFound()
	}
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// contactKinds lists the registered contact kinds; none when kinds is nil.
func contactKinds(kinds *channel.Kinds) []*channel.ContactKind {
	if kinds == nil {
		return nil
	}
	return kinds.Contacts()
}

// setAddresses applies address changes to u's contacts: "" removes one, an unchanged address keeps
// its verification, a new one is stored verified at now when vouched for, else unverified.
func setAddresses(ctx context.Context, tx store.OrgTx, u *store.User, addrs map[string]*string, now time.Time, vouched bool) error {
	for kind, v := range addrs {
		have, had := u.Contact(kind)
		switch {
		case *v == "" && had:
			if err := tx.DeleteContact(ctx, u.ID, kind); err != nil {
				return err
			}
		case *v == "" || (had && have.Address == *v && have.VerifiedAt != nil):
		default:
			var verified *time.Time
			if vouched {
				verified = &now
			}
			if err := tx.SetContact(ctx, store.Contact{UserID: u.ID, Kind: kind, Address: *v, VerifiedAt: verified, CreatedAt: now}); err != nil {
				return err
			}
		}
	}
	fresh, err := tx.UserByID(ctx, u.ID)
	u.Contacts = fresh.Contacts
	return err
}
