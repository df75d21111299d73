package oidc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Directory is what mapping an identity to a member needs from the organization side. The app
// adapts org.Service and the store to it; tests use a fake.
type Directory interface {
	// OrgID resolves the organization SSO signs into from its id or name; "" means the only
	// organization of the instance, an error when there are several.
	OrgID(ctx context.Context, ref string) (string, error)
	// UserByEmail finds a person by lower-cased email anywhere on the instance (emails are unique per
	// instance); store.ErrNotFound when there is none.
	UserByEmail(ctx context.Context, email string) (store.User, error)
	// JoinInvited consumes an open invite for email and adds the person (org.Service.JoinInvited);
	// false when there is no open invite.
	JoinInvited(ctx context.Context, email, name string) (store.User, bool, error)
	// CreateMember adds a person who signs in only through SSO (no password), audited as the system.
	CreateMember(ctx context.Context, orgID, email, name string, role store.Role) (store.User, error)
	// SetRole changes a member's role to what their groups now map to (org.Service.SetRole, by the
	// system: it ends their sessions and never leaves the organization without an admin).
	SetRole(ctx context.Context, orgID, userID string, role store.Role) error
}

// Mapper turns an Identity into a member of the configured organization.
type Mapper struct {
	dir          Directory
	org          string
	roles        map[string]store.Role
	defaultRole  store.Role
	allowUnknown bool
}

// NewMapper checks the role settings; config.Load has already reported mistakes with their paths.
func NewMapper(cfg Config, dir Directory) (*Mapper, error) {
	for g, r := range cfg.Roles {
		if !r.Valid() {
			return nil, fmt.Errorf("oidc: group %q maps to unknown role %q", g, r)
		}
	}
	if cfg.DefaultRole != "" && !cfg.DefaultRole.Valid() {
		return nil, fmt.Errorf("oidc: unknown default role %q", cfg.DefaultRole)
	}
	return &Mapper{dir: dir, org: cfg.Org, roles: cfg.Roles, defaultRole: cfg.DefaultRole, allowUnknown: cfg.AllowUnknown}, nil
}

// rank orders roles so the most capable mapped role wins.
func rank(r store.Role) int {
	switch r {
	case store.RoleAdmin:
		return 3
	case store.RoleMember:
		return 2
	case store.RoleViewer:
		return 1
	}
	return 0
}

// RoleFor is the role groups give: the highest role any of them maps to; with a mapping configured
// and none of the groups in it, the default role ("" = refused). mapped reports that a mapping is
// configured, so the role is the provider's to decide.
func (m *Mapper) RoleFor(groups []string) (role store.Role, mapped bool) {
	if len(m.roles) == 0 {
		return m.defaultRole, false
	}
	for _, g := range groups {
		if r, ok := m.roles[g]; ok && rank(r) > rank(role) {
			role = r
		}
	}
	if role == "" {
		role = m.defaultRole
	}
	return role, true
}

func errUnknownUser() error {
	return problem.New(problem.Forbidden, "sso_unknown_user",
		"your account is not a member of this organization; ask an administrator to invite you")
}

// Resolve returns the member the identity signs in as: an existing member of the organization (their
// role kept in step with their groups when a mapping is configured), an invited person who joins
// now, or, with allow_unknown, a new member. Everyone else is refused with sso_unknown_user, a
// deactivated member with sso_deactivated, a person whose groups map to no role with sso_no_role.
// The caller starts the session.
func (m *Mapper) Resolve(ctx context.Context, id Identity) (store.User, error) {
	email := strings.ToLower(strings.TrimSpace(id.Email))
	if email == "" {
		return store.User{}, problem.New(problem.Forbidden, "sso_email_missing", "the identity provider sent no email address")
	}
	orgID, err := m.dir.OrgID(ctx, m.org)
	if err != nil {
		return store.User{}, fmt.Errorf("oidc: resolving the SSO organization: %w", err)
	}
	role, mapped := m.RoleFor(id.Groups)
	if mapped && role == "" {
		return store.User{}, problem.New(problem.Forbidden, "sso_no_role",
			"none of your groups at the identity provider gives access to this organization")
	}
	name := cleanName(id.Name)
	if name == "" {
		local, _, _ := strings.Cut(email, "@")
		name = cleanName(local)
	}

	u, err := m.dir.UserByEmail(ctx, email)
	switch {
	case err == nil:
		// A member of another organization on this instance is not someone SSO for this one knows; the
		// answer is the same as for a stranger.
		if u.OrgID != orgID {
			return store.User{}, errUnknownUser()
		}
		if !u.Active {
			return store.User{}, problem.New(problem.Forbidden, "sso_deactivated", "your account has been deactivated")
		}
		return m.syncRole(ctx, u, role, mapped)
	case !errors.Is(err, store.ErrNotFound):
		return store.User{}, fmt.Errorf("oidc: looking up the member: %w", err)
	}

	u, joined, err := m.dir.JoinInvited(ctx, email, name)
	if err != nil {
		return store.User{}, fmt.Errorf("oidc: joining by invite: %w", err)
	}
	if joined {
		return m.syncRole(ctx, u, role, mapped)
	}
	if !m.allowUnknown {
		return store.User{}, errUnknownUser()
	}
	if role == "" {
		role = store.RoleViewer // config requires default_role here; the least a stray setting can give
	}
	u, err = m.dir.CreateMember(ctx, orgID, email, name, role)
	if err != nil {
		return store.User{}, fmt.Errorf("oidc: creating the member: %w", err)
	}
	return u, nil
}

// syncRole makes the member's role what their groups say, when the provider decides roles.
func (m *Mapper) syncRole(ctx context.Context, u store.User, role store.Role, mapped bool) (store.User, error) {
	if !mapped || u.Role == role {
		return u, nil
	}
	if err := m.dir.SetRole(ctx, u.OrgID, u.ID, role); err != nil {
		return store.User{}, fmt.Errorf("oidc: updating the role from groups: %w", err)
	}
	u.Role = role
	return u, nil
}

// Resolve maps an identity from Finish to a member; see Mapper.Resolve. It fails when New was given
// no Directory.
func (p *Provider) Resolve(ctx context.Context, id Identity) (store.User, error) {
	if p.mapper == nil {
		return store.User{}, errors.New("oidc: no directory configured")
	}
	return p.mapper.Resolve(ctx, id)
}
