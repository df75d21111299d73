package escalation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// MaxLadderBytes bounds a ladder put through the API.
const MaxLadderBytes = 256 << 10

// Admin is who changes a ladder.
type Admin struct {
	OrgID  string
	UserID string
	Role   store.Role
}

// PutLadder validates src as one ladder named name and stores it as the organization's next version
// of that ladder, recording the change (the YAML's digest, never its text) in the audit log. Handoffs
// created before keep the version frozen onto them.
func (e *Engine) PutLadder(ctx context.Context, a Admin, name string, src []byte) (*Ladder, error) {
	if a.Role != store.RoleAdmin {
		return nil, problem.New(problem.Forbidden, "admins_only", "only admins change ladders")
	}
	if len(src) > MaxLadderBytes {
		return nil, problem.New(problem.TooLarge, "ladder_too_large", "a ladder is at most %d bytes", MaxLadderBytes)
	}
	ls, err := Parse(src, name+".yaml", e.kinds)
	var perr *Errors
	if errors.As(err, &perr) {
		p := problem.New(problem.Invalid, "invalid_ladder", "the ladder has %d mistake(s)", len(perr.List))
		p.Details = map[string]any{"errors": perr.List}
		return nil, p
	}
	if err != nil {
		return nil, err
	}
	if len(ls) != 1 {
		return nil, problem.New(problem.Invalid, "invalid_ladder", "send exactly one ladder, got %d", len(ls))
	}
	l := ls[0]
	if l.Name != name {
		return nil, problem.New(problem.Invalid, "ladder_name_mismatch", "the ladder is named %q but was put as %q", l.Name, name)
	}
	for _, kind := range e.kinds.Where(func(k channel.Kind) bool { return k.Configured }) {
		for _, v := range l.TeamTargets(kind) {
			if !e.d.Channels.HasDestination(kind, v) {
				return nil, problem.New(problem.Invalid, "unknown_"+kind, "%s:%s is not configured on this server", kind, v)
			}
		}
	}
	sum := sha256.Sum256(src)
	err = e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		prev, err := tx.LadderByName(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// The organization's ladders must still form a usable set with this one in it (at most one
		// default), checked before anything is stored.
		set, err := e.OrgSet(ctx, tx)
		if err != nil {
			return err
		}
		for _, other := range set.Ladders() {
			if l.Default && other.Default && other.Origin == "api" && other.Name != l.Name {
				return problem.New(problem.Invalid, "invalid_ladder", "ladder %q is already this organization's default; put it without default: true first", other.Name)
			}
		}
		if _, err := set.With([]*Ladder{l}); err != nil {
			return problem.New(problem.Invalid, "invalid_ladder", "%s", strings.TrimPrefix(err.Error(), "escalation: "))
		}
		now := e.now()
		l.Version, l.Origin = prev.Version+1, "api"
		if err := tx.PutLadder(ctx, store.LadderVersion{Name: name, Version: l.Version, Source: src, CreatedBy: a.UserID, CreatedAt: now}); err != nil {
			return err
		}
		err = e.d.Audit.Append(ctx, tx, audit.Event{Type: audit.LadderChanged, At: now,
			Actor: audit.Actor{Kind: string(store.ActorUser), ID: a.UserID, Role: string(a.Role)}, Subject: audit.Subject{Kind: "ladder", ID: name},
			Channel: "api", Details: &audit.Details{SHA256: hex.EncodeToString(sum[:])}})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, problem.New(problem.Conflict, "ladder_changed", "another change to this ladder landed first; send it again")
	}
	if err != nil {
		if errors.Is(err, audit.ErrSealed) {
			return nil, problem.New(problem.Forbidden, "organization_erased", "this organization is being erased")
		}
		return nil, err
	}
	e.d.Logger.InfoContext(ctx, "ladder changed", "org", a.OrgID, "ladder", name, "version", l.Version, "by", a.UserID)
	return l, nil
}

// LadderInfo is a ladder as listed to admins.
type LadderInfo struct {
	Ladder *Ladder
	// Source is the YAML an admin put; nil for file and built-in ladders.
	Source []byte
}

// OrgLadders lists the ladders in force for an organization, in matching order.
func (e *Engine) OrgLadders(ctx context.Context, orgID string) ([]LadderInfo, error) {
	var out []LadderInfo
	err := e.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		set, err := e.OrgSet(ctx, tx)
		if err != nil {
			return err
		}
		stored, err := tx.Ladders(ctx)
		if err != nil {
			return err
		}
		ls := set.Ladders()
		if !slices.ContainsFunc(ls, func(l *Ladder) bool { return l.Default }) {
			ls = append(ls, set.Builtin()) // what handoffs get when nothing matches
		}
		for _, l := range ls {
			info := LadderInfo{Ladder: l}
			for _, v := range stored {
				if v.Name == l.Name && v.Version == l.Version && l.Origin == "api" {
					info.Source = v.Source
				}
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// LadderVersions is one ladder's stored history, newest first, for the console. (console)
func (e *Engine) LadderVersions(ctx context.Context, orgID, name string) ([]store.LadderVersion, error) {
	var out []store.LadderVersion
	err := e.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.LadderVersions(ctx, name)
		return err
	})
	return out, err
}

// Timeline is a handoff's escalation so far: every send, with its state.
func (e *Engine) Timeline(ctx context.Context, orgID, handoffID string) ([]store.Send, error) {
	var out []store.Send
	err := e.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.ListSends(ctx, handoffID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("escalation: timeline: %w", err)
	}
	return out, nil
}

// Inbox lists the pending handoffs a person was sent to on the console, newest first: the console
// channel's deliveries are its rows.
func (e *Engine) Inbox(ctx context.Context, orgID, userID string, limit int) ([]store.Handoff, error) {
	var out []store.Handoff
	err := e.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.Inbox(ctx, userID, limit)
		return err
	})
	return out, err
}
