package org

// Chat accounts (issue 14): a person links their Slack or Telegram account to themselves by making a
// short code in the console and sending it to the bot from that account; the bot knows no
// organization, so the code finds it. A code works once, for ten minutes, for one kind; attempts are
// throttled per chat account. Linking is audited without the account's id or address.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// LinkCodeTTL is how long a link code works.
const LinkCodeTTL = 10 * time.Minute

// Link attempts per chat account per window: enough for typos, far too few to guess a 60-bit code.
const (
	linkLimit  = 5
	linkWindow = 10 * time.Minute
)

// linkAlphabet is Crockford's base32: 32 symbols without I, L, O and U, so a code read aloud or
// retyped survives; normalizeLinkCode folds the look-alikes back (o → 0, i and l → 1).
const linkAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const linkCodeLen = 12

func errInvalidLinkCode() error {
	return problem.New(problem.NotFound, "invalid_link_code",
		"this link code is not valid: it was mistyped, used, replaced by a newer one or has expired (codes work for 10 minutes); make a new one in the Ony console")
}

// chatContact is the contact kind a channel kind links, or a problem when it has none.
func (sv Service) chatContact(kind string) (*channel.ContactKind, error) {
	if sv.Kinds != nil {
		if k, ok := sv.Kinds.Kind(kind); ok && k.Contact != nil {
			return k.Contact, nil
		}
	}
	return nil, problem.New(problem.Invalid, "unknown_kind", "%s is not a channel whose accounts can be linked", quote(kind, 32))
}

// LinkCode makes a code with which the person by links their account on kind (slack, telegram),
// shown as xxxx-xxxx-xxxx. A new code replaces the person's open code for the same kind.
func (sv Service) LinkCode(ctx context.Context, by audit.Actor, orgID, kind string) (code string, expires time.Time, err error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return "", time.Time{}, errOrgNotFound()
	}
	if by.Kind != string(store.ActorUser) {
		return "", time.Time{}, problem.New(problem.Forbidden, "people_only", "only a person can link a chat account to themselves")
	}
	if _, err := sv.chatContact(kind); err != nil {
		return "", time.Time{}, err
	}
	raw := make([]byte, linkCodeLen)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, fmt.Errorf("link code: %w", err)
	}
	for i, b := range raw {
		raw[i] = linkAlphabet[b&31] // 256 is a multiple of 32: no bias
	}
	plain := string(raw)
	now := sv.now()
	expires = now.Add(LinkCodeTTL)
	err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		u, err := member(ctx, tx, by.ID)
		if err != nil {
			return err
		}
		if !u.Active {
			return errAccountInactive()
		}
		return tx.CreateLinkCode(ctx, store.LinkCode{Hash: linkCodeHash(plain), UserID: u.ID, Kind: kind, CreatedAt: now, ExpiresAt: expires})
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return plain[:4] + "-" + plain[4:8] + "-" + plain[8:], expires, nil
}

func errAccountInactive() error {
	return problem.New(problem.Forbidden, "account_inactive", "this Ony account is deactivated")
}

// normalizeLinkCode reads a code as people type it: any case, with or without dashes and spaces,
// look-alike letters folded. ok is false when it cannot be a code.
func normalizeLinkCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case '-', ' ':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(linkAlphabet, r) || b.Len() >= linkCodeLen {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != linkCodeLen {
		return "", false
	}
	return b.String(), true
}

func linkCodeHash(normalized string) []byte {
	sum := sha256.Sum256([]byte(normalized))
	return sum[:]
}

// Link spends a code sent to the bot from the chat account address on kind, and makes address the
// code's person's contact (verified: the person proved they hold both). It answers who was linked,
// for the bot's confirmation. Attempts are throttled per (kind, address); an address already linked
// to another member of the org is refused; a wrong, used or expired code is invalid_link_code.
func (sv Service) Link(ctx context.Context, code, kind, address string) (channel.LinkedPerson, error) {
	if sv.Coord != nil {
		// The key holds a digest, not the chat id.
		sum := sha256.Sum256([]byte(kind + "\x00" + address))
		l, err := sv.Coord.Hit(ctx, "link:"+hex.EncodeToString(sum[:16]), linkLimit, linkWindow)
		if err != nil {
			return channel.LinkedPerson{}, fmt.Errorf("link rate limit: %w", err)
		}
		if !l.Allowed {
			p := problem.New(problem.RateLimited, "too_many_attempts", "too many link attempts from this account; wait %s and try again",
				l.RetryAfter.Round(time.Minute).String())
			p.RetryAfter = l.RetryAfter
			return channel.LinkedPerson{}, p
		}
	}
	ck, err := sv.chatContact(kind)
	if err != nil {
		return channel.LinkedPerson{}, err
	}
	normalized, ok := normalizeLinkCode(code)
	if !ok {
		return channel.LinkedPerson{}, errInvalidLinkCode()
	}
	addr, err := ck.Normalize(address)
	if err != nil {
		return channel.LinkedPerson{}, problem.New(problem.Invalid, "invalid_address", "this %s account cannot be linked: %v", displayKind(kind), err)
	}
	hash := linkCodeHash(normalized)
	var c store.LinkCode
	err = sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { c, err = tx.LinkCodeByHash(ctx, hash); return err })
	if errors.Is(err, store.ErrNotFound) {
		return channel.LinkedPerson{}, errInvalidLinkCode()
	}
	if err != nil {
		return channel.LinkedPerson{}, err
	}
	now := sv.now()
	if c.Kind != kind || c.UsedAt != nil || !now.Before(c.ExpiresAt) {
		return channel.LinkedPerson{}, errInvalidLinkCode()
	}
	var out channel.LinkedPerson
	err = sv.Store.InOrg(ctx, c.OrgID, func(tx store.OrgTx) error {
		u, err := tx.UserByID(ctx, c.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidLinkCode()
		}
		if err != nil {
			return err
		}
		if !u.Active {
			return errAccountInactive()
		}
		o, err := tx.Org(ctx)
		if err != nil {
			return err
		}
		if err := sv.setChatContact(ctx, tx, u, kind, ck, addr, now); err != nil {
			return err
		}
		fresh, err := tx.UseLinkCode(ctx, hash, now)
		if err != nil {
			return err
		}
		if !fresh {
			return errInvalidLinkCode() // used by a concurrent attempt
		}
		if err := sv.Audit.Append(ctx, tx, audit.Event{Type: audit.ContactLinked, At: now,
			Actor:   audit.Actor{Kind: string(store.ActorUser), ID: u.ID, Role: string(u.Role)},
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Channel: kind, Details: &audit.Details{Method: audit.LinkMethodCode}}); err != nil {
			return err
		}
		out = channel.LinkedPerson{Name: u.Name, Org: o.Name}
		return nil
	})
	if err != nil {
		return channel.LinkedPerson{}, err
	}
	return out, nil
}

// setChatContact makes addr u's verified contact of ck, unless another member of the org has it.
func (sv Service) setChatContact(ctx context.Context, tx store.OrgTx, u store.User, kind string, ck *channel.ContactKind, addr string, now time.Time) error {
	other, err := tx.UserByContact(ctx, ck.Name, addr)
	switch {
	case errors.Is(err, store.ErrConflict) || (err == nil && other.ID != u.ID):
		return problem.New(problem.Conflict, "address_taken",
			"this %s account is already linked to another member of this organization; they (or an admin) must unlink it first", displayKind(kind))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	return tx.SetContact(ctx, store.Contact{UserID: u.ID, Kind: ck.Name, Address: addr, VerifiedAt: &now, CreatedAt: now})
}

// LinkByLookup links the chat account address on kind to the person by, found by the console (Slack's
// users.lookupByEmail with the person's own email): no code is needed, since the chat workspace itself
// vouched for the match. Audited as contact.linked by method email.
func (sv Service) LinkByLookup(ctx context.Context, by audit.Actor, orgID, kind, address string) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	if by.Kind != string(store.ActorUser) {
		return problem.New(problem.Forbidden, "people_only", "only a person can link a chat account to themselves")
	}
	ck, err := sv.chatContact(kind)
	if err != nil {
		return err
	}
	addr, err := ck.Normalize(address)
	if err != nil {
		return problem.New(problem.Invalid, "invalid_address", "this %s account cannot be linked: %v", displayKind(kind), err)
	}
	now := sv.now()
	return sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		u, err := member(ctx, tx, by.ID)
		if err != nil {
			return err
		}
		if !u.Active {
			return errAccountInactive()
		}
		if err := sv.setChatContact(ctx, tx, u, kind, ck, addr, now); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.ContactLinked, At: now,
			Actor:   audit.Actor{Kind: string(store.ActorUser), ID: u.ID, Role: string(u.Role)},
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Channel: kind, Details: &audit.Details{Method: audit.LinkMethodEmail}})
		return err
	})
}

// Unlink removes userID's contact of kind: a person unlinks their own account, an admin anyone's.
// Nothing linked is not an error (and nothing is recorded).
func (sv Service) Unlink(ctx context.Context, by audit.Actor, orgID, userID, kind string) error {
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	ck, err := sv.chatContact(kind)
	if err != nil {
		return err
	}
	now := sv.now()
	return sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		self := by.Kind == string(store.ActorUser) && by.ID == userID
		if !self {
			if err := requireAdmin(ctx, tx, by); err != nil {
				return err
			}
		}
		u, err := member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, ok := u.Contact(ck.Name); !ok {
			return nil
		}
		if err := tx.DeleteContact(ctx, u.ID, ck.Name); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.ContactUnlinked, At: now, Actor: by,
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Channel: kind})
		return err
	})
}

// displayKind is a channel kind as people write it in a sentence ("slack" → "Slack").
func displayKind(kind string) string {
	if kind == "" {
		return "chat"
	}
	return strings.ToUpper(kind[:1]) + kind[1:]
}
