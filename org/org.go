// Package org creates organizations, their first admin and their agent devices: the provisioning that
// `ony serve` does on an empty database and `ony admin` does on demand.
package org

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Service provisions organizations and devices, recording each in the organization's audit log in
// the same transaction.
type Service struct {
	Store store.Store
	Audit *audit.Log
	// Kinds are the channel kinds, whose contacts people's settings may hold.
	Kinds *channel.Kinds
	// Now is injectable for tests; nil means time.Now.
	Now func() time.Time

	// Team and identity (issue 13).
	// PublicURL is where invite and reset links point ({PublicURL}/console/invite/{code}).
	PublicURL string
	// Mail sends invites and reset links; nil = no SMTP relay (the admin copies invite links).
	Mail mail.Sender
	// Coord throttles password-reset requests per email; nil = unthrottled.
	Coord coord.Coord
	// Logger reports mail that could not be sent; nil = slog.Default().
	Logger *slog.Logger

	// Texter sends phone verification codes (issue 15); nil (or a nil Coord) = phone verification off.
	Texter Texter
	// rand is the source of phone codes; nil = crypto/rand. Set by internal tests only.
	rand io.Reader
}

func (sv Service) logger() *slog.Logger {
	if sv.Logger != nil {
		return sv.Logger
	}
	return slog.Default()
}

func (sv Service) now() time.Time {
	if sv.Now != nil {
		return sv.Now().UTC()
	}
	return time.Now().UTC()
}

// NewOrg is what creating an organization needs. Password empty means generate one.
type NewOrg struct {
	Name       string
	AdminEmail string
	AdminName  string
	Password   string
	MaxTimeout time.Duration
}

// CreatedOrg carries the one-time secrets; they are not stored in the clear anywhere.
type CreatedOrg struct {
	OrgID         string
	AdminID       string
	AdminEmail    string
	AdminPassword string // set only when generated
}

// errEmailTaken is a function, not a shared value: callers may attach details to the problem they get.
// emailFree reports errEmailTaken when a person anywhere on the instance has email already.
func emailFree(ctx context.Context, s store.Store, email string) error {
	return s.InSystem(ctx, func(tx store.SystemTx) error {
		_, err := tx.UserByEmail(ctx, email)
		if err == nil {
			return errEmailTaken()
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
}

func errEmailTaken() error {
	return problem.New(problem.Conflict, "email_taken", "a user with this email already exists")
}

// NormalizeEmail lower-cases and checks an address by the rule login uses (auth.NormalizeEmail), so a
// person is provisioned under exactly the address they will sign in with.
func NormalizeEmail(s string) (string, error) { return auth.NormalizeEmail(s) }

// Create makes an organization and its first admin in one transaction.
func (sv Service) Create(ctx context.Context, by audit.Actor, n NewOrg) (CreatedOrg, error) {
	s, now := sv.Store, sv.now()
	name := strings.TrimSpace(n.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return CreatedOrg{}, problem.New(problem.Invalid, "invalid_name", "organization name is 1 to 100 characters")
	}
	email, err := NormalizeEmail(n.AdminEmail)
	if err != nil {
		return CreatedOrg{}, err
	}
	out := CreatedOrg{OrgID: uuid.NewString(), AdminID: uuid.NewString(), AdminEmail: email}
	pw := n.Password
	if pw == "" {
		if pw, err = auth.GeneratePassword(); err != nil {
			return CreatedOrg{}, err
		}
		out.AdminPassword = pw
	} else if err := auth.CheckPasswordPolicy(pw); err != nil {
		return CreatedOrg{}, problem.New(problem.Invalid, "weak_password", "%s", err.Error())
	}
	// Refuse a taken email before paying for a password hash; the unique index still decides races.
	if err := emailFree(ctx, s, email); err != nil {
		return CreatedOrg{}, err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return CreatedOrg{}, err
	}
	maxT := n.MaxTimeout
	if maxT <= 0 {
		maxT = 24 * time.Hour
	}
	adminName := strings.TrimSpace(n.AdminName)
	if adminName == "" {
		adminName = strings.SplitN(email, "@", 2)[0]
	}
	// The org, its admin and their audit records commit together: no admin-less org can be left behind.
	err = s.InOrg(ctx, out.OrgID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: out.OrgID, Name: name, MaxTimeout: maxT, CreatedAt: now}); err != nil {
			return err
		}
		err := tx.CreateUser(ctx, store.User{ID: out.AdminID, Email: email, Name: adminName, PasswordHash: hash,
			Role: store.RoleAdmin, Timezone: "UTC", Active: true, CreatedAt: now})
		if err != nil {
			return err
		}
		if err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.OrgCreated, At: now, Actor: by,
			Subject: audit.Subject{Kind: "org", ID: out.OrgID}, Channel: "system"}); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberInvited, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: out.AdminID}, Channel: "system", Details: &audit.Details{Role: string(store.RoleAdmin)}})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return CreatedOrg{}, errEmailTaken()
	}
	if err != nil {
		return CreatedOrg{}, fmt.Errorf("create org: %w", err)
	}
	return out, nil
}

// CreatedDevice carries the device token, shown once.
type CreatedDevice struct {
	DeviceID string
	Token    string
}

// CreateDevice issues an agent token for orgID.
func (sv Service) CreateDevice(ctx context.Context, by audit.Actor, orgID, name string) (CreatedDevice, error) {
	s, now := sv.Store, sv.now()
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return CreatedDevice{}, problem.New(problem.Invalid, "invalid_name", "device name is 1 to 100 characters")
	}
	if _, err := uuid.Parse(orgID); err != nil {
		return CreatedDevice{}, problem.New(problem.NotFound, "org_not_found", "no such organization")
	}
	tok, err := auth.NewToken(auth.DeviceTokenPrefix)
	if err != nil {
		return CreatedDevice{}, err
	}
	d := store.Device{ID: uuid.NewString(), Name: name, TokenHash: tok.Hash, CallbackKey: auth.CallbackKey(tok.Plain), CreatedAt: now}
	err = s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if _, err := tx.Org(ctx); errors.Is(err, store.ErrNotFound) {
			return problem.New(problem.NotFound, "org_not_found", "no such organization")
		} else if err != nil {
			return err
		}
		if err := tx.CreateDevice(ctx, d); err != nil {
			return err
		}
		err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.DeviceCreated, At: now, Actor: by,
			Subject: audit.Subject{Kind: "device", ID: d.ID}, Channel: "system"})
		return err
	})
	if err != nil {
		return CreatedDevice{}, err
	}
	return CreatedDevice{DeviceID: d.ID, Token: tok.Plain}, nil
}

// Bootstrap creates the first organization, admin and device when the database has none. It reports
// nil when there was already an organization: the one-time secrets are printed only once.
func (sv Service) Bootstrap(ctx context.Context, name, email string) (*CreatedOrg, *CreatedDevice, error) {
	s := sv.Store
	by := audit.Actor{Kind: "system", ID: "bootstrap"}
	var n int
	if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { n, err = tx.CountOrgs(ctx); return err }); err != nil {
		return nil, nil, err
	}
	if n > 0 {
		return nil, nil, nil
	}
	o, err := sv.Create(ctx, by, NewOrg{Name: name, AdminEmail: email})
	if p, ok := problem.As(err); ok && p.Code == "email_taken" {
		// Another replica starting at the same moment bootstrapped first; its output has the secrets.
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := sv.CreateDevice(ctx, by, o.OrgID, "first agent")
	if err != nil {
		return nil, nil, err
	}
	return &o, &d, nil
}

// RevokeDevice disables an agent token at once; the device row stays so the audit trail keeps pointing
// at it.
func (sv Service) RevokeDevice(ctx context.Context, by audit.Actor, orgID, deviceID string) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return problem.New(problem.NotFound, "org_not_found", "no such organization")
	}
	if _, err := uuid.Parse(deviceID); err != nil {
		return problem.New(problem.NotFound, "device_not_found", "no such device, or it is already revoked")
	}
	now := sv.now()
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := tx.RevokeDevice(ctx, deviceID, now); err != nil {
			return err
		}
		err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.DeviceRevoked, At: now, Actor: by,
			Subject: audit.Subject{Kind: "device", ID: deviceID}, Channel: "system"})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return problem.New(problem.NotFound, "device_not_found", "no such device, or it is already revoked")
	}
	return err
}

// EraseOrg is the right to erasure: the organization, everything under it and its whole audit log are
// deleted, and a tombstone in the instance log records that it happened. It cannot be undone.
func (sv Service) EraseOrg(ctx context.Context, by audit.Actor, orgID string) error {
	if err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return orgExists(ctx, tx) }); err != nil {
		return err
	}
	if err := sv.Audit.EraseOrg(ctx, sv.Store, orgID, by); err != nil {
		return err
	}
	// The rows are gone; what the database's files still hold of them goes now (SQLite). The erasure
	// stands if this fails, and the warning tells the operator the files may hold traces until the
	// database is vacuumed.
	if sc, ok := sv.Store.(store.Scrubber); ok {
		if err := sc.Scrub(ctx); err != nil {
			sv.logger().WarnContext(ctx, "erasure: clearing erased rows from the database files failed; run VACUUM", "org", orgID, "err", err)
		}
	}
	return nil
}

// OrgName is the organization's name (what the console's danger zone asks to type).
func (sv Service) OrgName(ctx context.Context, orgID string) (string, error) {
	var o store.Org
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { o, err = tx.Org(ctx); return err })
	if errors.Is(err, store.ErrNotFound) {
		return "", errOrgNotFound()
	}
	return o.Name, err
}

// Devices lists an organization's agent devices, revoked ones included, for the console. Tokens are
// never listed: only their hashes are stored.
func (sv Service) Devices(ctx context.Context, orgID string) ([]store.Device, error) {
	var out []store.Device
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.ListDevices(ctx)
		return err
	})
	return out, err
}
