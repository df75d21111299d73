package org

// Phone verification (issue 15): a number a person sets on their own profile is stored unverified,
// and no SMS or call goes to it until they prove they hold it by typing back a six-digit code texted
// to it. Codes live in link_codes under kind "phone" (hashed, ten minutes, once, a new one replaces
// the open one); the hash binds the code to the organization, the person and the number, so a code
// cannot verify a number changed after it was sent. Six digits are guessable without a limit, so
// both sending (3 an hour) and trying (5 per code) are throttled, and without a Coord the feature
// is off rather than unthrottled.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Texter sends a plain text message (voice/twilio, telnyx, plivo: (*Provider).SendSMS).
type Texter interface {
	SendSMS(ctx context.Context, to, body string) error
}

// PhoneCodeTTL is how long a phone verification code works.
const PhoneCodeTTL = 10 * time.Minute

// phoneContact is the contact kind verified (voice.Phone.Name); the link code kind is the same word.
const phoneContact = "phone"

// Throttles: three texts an hour per person keeps the SMS bill and the annoyance bounded; five tries
// per code (the window is the code's life, reset by a new code) make a guess 1 in 200,000.
const (
	phoneSendLimit  = 3
	phoneSendWindow = time.Hour
	phoneTryLimit   = 5
	phoneTryWindow  = PhoneCodeTTL
)

// phoneCodeBody is the text sent; %s is the code.
const phoneCodeBody = "ony: your verification code is %s. It expires in 10 minutes."

func errPhoneOff() error {
	return problem.New(problem.Unavailable, "phone_verification_off", "phone verification is not configured on this server: no SMS provider; ask an admin to set your number for you")
}

func errNotOwnPhone() error {
	return problem.New(problem.Forbidden, "people_only", "a person can verify only their own phone number")
}

func errNoPhone() error {
	return problem.New(problem.Invalid, "no_phone", "there is no phone number in your profile to verify; add one first")
}

func errPhoneVerified() error {
	return problem.New(problem.Conflict, "phone_verified", "your phone number is already verified")
}

func errInvalidPhoneCode() error {
	return problem.New(problem.Invalid, "invalid_code",
		"this code is not valid: it was mistyped, replaced by a newer one, used, or has expired (codes work for 10 minutes); send a new code")
}

// StartPhoneVerification texts a six-digit code to userID's own unverified phone number. Only the
// person themself may ask (by is userID). A new code ends the open one and gives a fresh five tries.
func (sv Service) StartPhoneVerification(ctx context.Context, by audit.Actor, orgID, userID string) error {
	if sv.Texter == nil || sv.Coord == nil {
		return errPhoneOff()
	}
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	if by.Kind != string(store.ActorUser) || by.ID != userID {
		return errNotOwnPhone()
	}
	// Read first, so a person without a number to verify does not spend a text of their hour.
	var phone string
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { phone, err = unverifiedPhone(ctx, tx, userID); return err })
	if err != nil {
		return err
	}
	l, err := sv.Coord.Hit(ctx, phoneKey("send", orgID, userID), phoneSendLimit, phoneSendWindow)
	if err != nil {
		return fmt.Errorf("phone verification rate limit: %w", err)
	}
	if !l.Allowed {
		p := problem.New(problem.RateLimited, "too_many_codes", "Ony sends at most %d codes an hour; try again in %d minutes",
			phoneSendLimit, max(1, int((l.RetryAfter+time.Minute-1)/time.Minute)))
		p.RetryAfter = l.RetryAfter
		return p
	}
	now := sv.now()
	var code string
	// The hash is unique across the table: the same person may, rarely, draw a code they drew before
	// for the same number. The insert then conflicts and a fresh code is drawn.
	for attempt := 0; ; attempt++ {
		code, err = newPhoneCode(sv.random())
		if err != nil {
			return err
		}
		err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
			// Again inside the transaction: the number must be the one the hash binds.
			if p, err := unverifiedPhone(ctx, tx, userID); err != nil {
				return err
			} else if p != phone {
				return errors.New("phone verification: the number changed while sending a code")
			}
			return tx.CreateLinkCode(ctx, store.LinkCode{Hash: phoneCodeHash(orgID, userID, phone, code), UserID: userID,
				Kind: phoneContact, CreatedAt: now, ExpiresAt: now.Add(PhoneCodeTTL)})
		})
		if !errors.Is(err, store.ErrConflict) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := sv.Coord.Reset(ctx, phoneKey("try", orgID, userID)); err != nil {
		return fmt.Errorf("phone verification rate limit: %w", err)
	}
	if err := sv.Texter.SendSMS(ctx, phone, fmt.Sprintf(phoneCodeBody, code)); err != nil {
		// The provider's error names no full number or secret (its contract); the number is masked here.
		sv.logger().Warn("phone verification code not sent", "phone", sv.maskPhone(phone), "err", err)
		return problem.New(problem.Unavailable, "sms_failed", "Ony could not text your phone just now; try again in a few minutes")
	}
	return nil
}

// ConfirmPhone checks a code sent by StartPhoneVerification and marks userID's phone number verified,
// audited as contact.verified (channel sms, method code, no number). Only the person themself may
// confirm. Every try counts, right or wrong; the sixth on one code is refused.
func (sv Service) ConfirmPhone(ctx context.Context, by audit.Actor, orgID, userID, code string) error {
	if sv.Texter == nil || sv.Coord == nil {
		return errPhoneOff()
	}
	if _, err := uuid.Parse(orgID); err != nil {
		return errOrgNotFound()
	}
	if by.Kind != string(store.ActorUser) || by.ID != userID {
		return errNotOwnPhone()
	}
	digits, ok := normalizePhoneCode(code)
	if !ok {
		return problem.New(problem.Invalid, "invalid_code", "a verification code is the 6 digits of the text Ony sent you")
	}
	tries := phoneKey("try", orgID, userID)
	l, err := sv.Coord.Hit(ctx, tries, phoneTryLimit, phoneTryWindow)
	if err != nil {
		return fmt.Errorf("phone verification rate limit: %w", err)
	}
	if !l.Allowed {
		p := problem.New(problem.RateLimited, "too_many_attempts", "too many wrong codes; send a new code and type that one")
		p.RetryAfter = l.RetryAfter
		return p
	}
	now := sv.now()
	err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		u, err := member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if !u.Active {
			return errAccountInactive()
		}
		c, ok := u.Contact(phoneContact)
		switch {
		case !ok:
			return errNoPhone()
		case c.VerifiedAt != nil:
			return errPhoneVerified()
		}
		fresh, err := tx.UseLinkCode(ctx, phoneCodeHash(orgID, u.ID, c.Address, digits), now)
		if err != nil {
			return err
		}
		if !fresh {
			return errInvalidPhoneCode()
		}
		c.VerifiedAt = &now
		if err := tx.SetContact(ctx, c); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.ContactVerified, At: now,
			Actor:   audit.Actor{Kind: string(store.ActorUser), ID: u.ID, Role: string(u.Role)},
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Channel: "sms", Details: &audit.Details{Method: audit.LinkMethodCode}})
		return err
	})
	if err != nil {
		return err
	}
	// The code is spent; the window would only get in the way of verifying a next number.
	if err := sv.Coord.Reset(ctx, tries); err != nil {
		sv.logger().Warn("phone verification: resetting the try window", "err", err)
	}
	return nil
}

// unverifiedPhone is userID's phone number, when they are an active member and it awaits verification.
func unverifiedPhone(ctx context.Context, tx store.OrgTx, userID string) (string, error) {
	u, err := member(ctx, tx, userID)
	if err != nil {
		return "", err
	}
	if !u.Active {
		return "", errAccountInactive()
	}
	c, ok := u.Contact(phoneContact)
	switch {
	case !ok || c.Address == "":
		return "", errNoPhone()
	case c.VerifiedAt != nil:
		return "", errPhoneVerified()
	}
	return c.Address, nil
}

// phoneKey names a throttle window; ids only, never the number.
func phoneKey(what, orgID, userID string) string { return "phone:" + what + ":" + orgID + ":" + userID }

// phoneCodeHash binds a code to its organization, person and number. The code alone has 20 bits, so
// the binding (not secrecy of the hash) is what matters: the same digits mean nothing for another
// person or another number, and hashes of different people never collide in the unique index.
func phoneCodeHash(orgID, userID, phone, code string) []byte {
	sum := sha256.Sum256([]byte("ony phone code\x00" + orgID + "\x00" + userID + "\x00" + phone + "\x00" + code))
	return sum[:]
}

// newPhoneCode draws six decimal digits without modulo bias.
func newPhoneCode(r io.Reader) (string, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("phone code: %w", err)
		}
		n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		// 4,294,000,000 is the largest multiple of 10^6 below 2^32: reject above it.
		if n < 4_294_000_000 {
			return fmt.Sprintf("%06d", n%1_000_000), nil
		}
	}
}

// normalizePhoneCode reads a code as people type it: spaces and dashes ignored, exactly six digits.
func normalizePhoneCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || r == '-' || r == '\t':
		case r >= '0' && r <= '9' && b.Len() < 6:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != 6 {
		return "", false
	}
	return b.String(), true
}

func (sv Service) random() io.Reader {
	if sv.rand != nil {
		return sv.rand
	}
	return rand.Reader
}

// maskPhone masks a number by the registered phone kind's rule, or wholly when none is registered.
func (sv Service) maskPhone(s string) string {
	if sv.Kinds != nil {
		if ck, ok := sv.Kinds.Contact(phoneContact); ok && ck.Mask != nil {
			return ck.Mask(s)
		}
	}
	return "(a phone number)"
}
