package app

// Single sign-on wiring (issue 13, oidc): the oidc.Provider from configuration and the Directory that
// maps an identity to a member through the store and the organization service.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/oidc"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

// SSOMembers is the part of org.Service that invites and roles bring (ident's part of issue 13):
// joining by an open invite and changing a role. Until it is wired, no invite joins through SSO and a
// role change from groups is refused (the sign-in with it).
type SSOMembers interface {
	JoinInvited(ctx context.Context, email, name string) (store.User, bool, error)
	SetRole(ctx context.Context, by audit.Actor, orgID, userID string, role store.Role) error
}

// ssoActor is who the audit log names for what SSO does on its own: creating a member, a role from
// the provider's groups.
var ssoActor = audit.Actor{Kind: "system", ID: "sso"}

// SSODirectory is oidc.Directory over the store and org.Service.
type SSODirectory struct {
	Store   store.Store
	Org     org.Service
	Members SSOMembers // nil: see SSOMembers
}

// OrgID resolves oidc.org: an organization's id, or its exact name; empty is the only organization.
func (d SSODirectory) OrgID(ctx context.Context, ref string) (string, error) {
	var ids []string
	if err := d.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.OrgIDs(ctx); return err }); err != nil {
		return "", err
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == store.InstanceLogID })
	if ref == "" {
		if len(ids) != 1 {
			return "", fmt.Errorf("oidc.org is empty and the instance has %d organizations; name one", len(ids))
		}
		return ids[0], nil
	}
	if slices.Contains(ids, ref) {
		return ref, nil
	}
	var found []string
	for _, id := range ids {
		var o store.Org
		if err := d.Store.InOrg(ctx, id, func(tx store.OrgTx) (err error) { o, err = tx.Org(ctx); return err }); err != nil {
			return "", err
		}
		if o.Name == ref {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("oidc.org %q names %d organizations, want exactly one", ref, len(found))
	}
	return found[0], nil
}

// UserByEmail finds a person anywhere on the instance.
func (d SSODirectory) UserByEmail(ctx context.Context, email string) (u store.User, err error) {
	err = d.Store.InSystem(ctx, func(tx store.SystemTx) error { u, err = tx.UserByEmail(ctx, email); return err })
	return u, err
}

// JoinInvited consumes an open invite (org.Service.JoinInvited) when that part is wired.
func (d SSODirectory) JoinInvited(ctx context.Context, email, name string) (store.User, bool, error) {
	if d.Members == nil {
		return store.User{}, false, nil
	}
	return d.Members.JoinInvited(ctx, email, name)
}

// CreateMember adds a person who signs in through SSO. org.Service generates a password nobody is
// told: the person can still set one through a password reset.
func (d SSODirectory) CreateMember(ctx context.Context, orgID, email, name string, role store.Role) (store.User, error) {
	if _, err := d.Org.CreateUser(ctx, ssoActor, orgID, org.NewUser{Email: email, Name: name, Role: role}); err != nil {
		return store.User{}, err
	}
	return d.UserByEmail(ctx, email)
}

// SetRole applies the role the provider's groups map to.
func (d SSODirectory) SetRole(ctx context.Context, orgID, userID string, role store.Role) error {
	if d.Members == nil {
		return errors.New("changing a role from SSO groups needs the team service")
	}
	return d.Members.SetRole(ctx, ssoActor, orgID, userID, role)
}

// SSOConfig turns the oidc section into the provider's configuration; the flow cookie is sealed with
// a key derived from the keyring.
func SSOConfig(c *config.Config, keys *keyring.Keyring) oidc.Config {
	o := c.OIDC
	roles := make(map[string]store.Role, len(o.Roles))
	for g, r := range o.Roles {
		roles[g] = store.Role(r)
	}
	return oidc.Config{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret.Value(),
		RedirectURL: o.Redirect(c.PublicURL), Scopes: o.Scopes,
		EmailClaim: o.Claims.Email, NameClaim: o.Claims.Name, GroupsClaim: o.Claims.Groups,
		StateKey:     keys.Derive("oidc-state", ""),
		SecureCookie: c.Auth.CookieSecure(c.PublicURL),
		Roles:        roles, DefaultRole: store.Role(o.DefaultRole), AllowUnknown: o.AllowUnknown, Org: o.Org,
	}
}

// NewSSO builds the lazily discovering provider and tries discovery once, so a wrong issuer shows in
// the start-up log; a failure is not fatal (password sign-in does not need the provider). client nil
// is the provider's own.
func NewSSO(ctx context.Context, c *config.Config, keys *keyring.Keyring, dir oidc.Directory, logger *slog.Logger, now func() time.Time,
	client *http.Client) *oidc.Lazy {
	l := oidc.NewLazy(SSOConfig(c, keys), oidc.Deps{Directory: dir, Logger: logger, Now: now, HTTPClient: client})
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := l.Get(dctx); err != nil {
		logger.Warn("single sign-on: the identity provider is not reachable yet; retrying on use", "issuer", c.OIDC.Issuer, "err", err)
	}
	return l
}
