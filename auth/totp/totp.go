// Package totp is the second factor: enrolment of time-based one-time passwords (RFC 6238) with a QR
// code, verification that accepts each code once and throttles guessing, and the step-up check.
package totp

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Parameters every authenticator app understands; fixed, because changing them would strand enrolments.
const (
	period = 30
	digits = otp.DigitsSix
	skew   = 1 // steps either side of now
)

// DefaultStepUpRisks are the risks that need a code to approve when an org has no policy.
var DefaultStepUpRisks = []string{"high", "critical"}

// Config tunes the service; zero fields take the defaults noted.
type Config struct {
	Issuer string // shown in the authenticator app; "Ony"
	// Failed codes allowed per person (5) in one Window (15m).
	MaxFailures int64
	Window      time.Duration
}

// Deps are what the service talks to. Clock may be nil (time.Now); Policy may be nil (the default risks).
type Deps struct {
	Store   store.Store
	Keyring *keyring.Keyring
	Coord   coord.Coord
	Audit   *audit.Log
	Logger  *slog.Logger
	Clock   func() time.Time
	// Policy returns the risks for which an org requires step-up (its settings).
	Policy func(ctx context.Context, orgID string) ([]string, error)
}

// Service enrols, verifies and checks step-up.
type Service struct {
	d   Deps
	cfg Config
}

// New builds the service.
func New(d Deps, cfg Config) *Service {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "Ony"
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	if cfg.Window <= 0 {
		cfg.Window = 15 * time.Minute
	}
	return &Service{d: d, cfg: cfg}
}

// Enrollment is a pending secret to show once: as text, as an otpauth:// URL and as a QR code of it.
type Enrollment struct {
	Secret string
	URL    string
	QRPNG  []byte
}

// Errors are problem values with stable codes.
func errInvalid() error {
	return problem.New(problem.Unauthorized, "invalid_totp", "the code is wrong or was used already")
}

func errNotEnrolled() error {
	return problem.New(problem.Forbidden, "totp_not_enrolled", "two-factor authentication is not set up for this account")
}

// ErrStepUpRequired answers an approval that needs a code and came without one.
func ErrStepUpRequired() error {
	return problem.New(problem.Forbidden, "stepup_required", "approving at this risk needs a code from your authenticator app (totp)")
}

func aad(orgID, userID string) []byte { return []byte("ony/totp/v1|" + orgID + "|" + userID) }

// Begin makes a new pending secret for the person, replacing a pending one; it counts only once
// Confirm has seen a code from it. A person with a confirmed secret must Disable it first.
func (s *Service) Begin(ctx context.Context, orgID, userID, account string) (Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: account, Period: period,
		Digits: digits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: generate: %w", err)
	}
	sealed, err := s.d.Keyring.Seal([]byte(key.Secret()), aad(orgID, userID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: seal: %w", err)
	}
	err = s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		return tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: userID, Secret: sealed, CreatedAt: s.d.Clock().UTC()})
	})
	if errors.Is(err, store.ErrConflict) {
		return Enrollment{}, problem.New(problem.Conflict, "totp_already_enrolled", "two-factor authentication is already on; disable it first")
	}
	if err != nil {
		return Enrollment{}, err
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, 256)
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp: qr code: %w", err)
	}
	return Enrollment{Secret: key.Secret(), URL: key.URL(), QRPNG: png}, nil
}

// Confirm turns the pending secret on, given a code from it (which is spent).
func (s *Service) Confirm(ctx context.Context, orgID, userID, code string) error {
	if err := s.throttled(ctx, orgID, userID); err != nil {
		return err
	}
	row, err := s.row(ctx, orgID, userID)
	if err != nil {
		return err
	}
	if row.ConfirmedAt != nil {
		return problem.New(problem.Conflict, "totp_already_enrolled", "two-factor authentication is already on")
	}
	step, ok, err := s.match(row, orgID, userID, code)
	if err != nil {
		return err
	}
	if !ok {
		return s.failed(ctx, orgID, userID, "wrong code")
	}
	var confirmed bool
	err = s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		var err error
		if confirmed, err = tx.ConfirmTOTP(ctx, userID, step, s.d.Clock().UTC()); err != nil || !confirmed {
			return err
		}
		return s.audit(ctx, tx, userID, audit.MemberTOTPEnrolled, "", "")
	})
	if err != nil {
		return err
	}
	if !confirmed {
		return s.failed(ctx, orgID, userID, "replayed code")
	}
	_ = s.d.Coord.Reset(ctx, s.limitKey(orgID, userID))
	s.d.Logger.InfoContext(ctx, "totp enrolled", "org", orgID, "user", userID)
	return nil
}

// Disable turns TOTP off for the person, given a valid code.
func (s *Service) Disable(ctx context.Context, orgID, userID, code string) error {
	if err := s.Verify(ctx, orgID, userID, code); err != nil {
		return err
	}
	err := s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := tx.DeleteUserTOTP(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, audit.MemberTOTPDisabled, "", "")
	})
	if err == nil {
		s.d.Logger.InfoContext(ctx, "totp disabled", "org", orgID, "user", userID)
	}
	return err
}

// Enrolled reports whether the person has a confirmed secret.
func (s *Service) Enrolled(ctx context.Context, orgID, userID string) (bool, error) {
	var row store.UserTOTP
	err := s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { row, err = tx.UserTOTP(ctx, userID); return err })
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && row.ConfirmedAt != nil, err
}

// Verify checks a code against the person's confirmed secret. A code (its time step) is accepted
// once, however many requests race with it; failures are counted per person and, past the limit,
// refused before any check until the window ends.
func (s *Service) Verify(ctx context.Context, orgID, userID, code string) error {
	if err := s.throttled(ctx, orgID, userID); err != nil {
		return err
	}
	row, err := s.row(ctx, orgID, userID)
	if err != nil {
		return err
	}
	if row.ConfirmedAt == nil {
		return errNotEnrolled()
	}
	step, ok, err := s.match(row, orgID, userID, code)
	if err != nil {
		return err
	}
	if !ok {
		return s.failed(ctx, orgID, userID, "wrong code")
	}
	var spent bool
	err = s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { spent, err = tx.UseTOTPStep(ctx, userID, step); return err })
	if err != nil {
		return err
	}
	if !spent {
		return s.failed(ctx, orgID, userID, "replayed code")
	}
	_ = s.d.Coord.Reset(ctx, s.limitKey(orgID, userID))
	return nil
}

// StepUpRequired reports whether approving at risk needs a code in the org.
func (s *Service) StepUpRequired(ctx context.Context, orgID, risk string) (bool, error) {
	risks := DefaultStepUpRisks
	if s.d.Policy != nil {
		var err error
		if risks, err = s.d.Policy(ctx, orgID); err != nil {
			return false, fmt.Errorf("totp: step-up policy: %w", err)
		}
	}
	return slices.Contains(risks, risk), nil
}

// StepUp is the check before an approval at risk: nil when the org does not require step-up for it,
// else the code must verify. Every check that needed a code is audited (never the code).
func (s *Service) StepUp(ctx context.Context, orgID, userID, risk, code string) error {
	required, err := s.StepUpRequired(ctx, orgID, risk)
	if err != nil || !required {
		return err
	}
	if code == "" {
		return ErrStepUpRequired()
	}
	verr := s.Verify(ctx, orgID, userID, code)
	p, isProblem := problem.As(verr)
	if verr != nil && !isProblem {
		return verr // the store or the keyring failed: nothing was decided about the person
	}
	typ, outcome := audit.StepUpPassed, ""
	if verr != nil {
		typ, outcome = audit.StepUpFailed, p.Code
	}
	if err := s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return s.audit(ctx, tx, userID, typ, risk, outcome) }); err != nil {
		return err
	}
	if verr != nil && p.Kind == problem.Unauthorized {
		// The session is fine; the code is not. 401 would tell a client to sign in again.
		q := *p
		q.Kind = problem.Forbidden
		return &q
	}
	return verr
}

// Rekey re-seals every secret not sealed under the keyring's current key, and says how many.
func (s *Service) Rekey(ctx context.Context) (int, error) {
	var orgs []string
	if err := s.d.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { orgs, err = tx.OrgIDs(ctx); return err }); err != nil {
		return 0, err
	}
	cur := s.d.Keyring.CurrentVersion()
	n := 0
	for _, org := range orgs {
		err := s.d.Store.InOrg(ctx, org, func(tx store.OrgTx) error {
			rows, err := tx.ListUserTOTP(ctx)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if len(r.Secret) >= 2 && binary.BigEndian.Uint16(r.Secret) == cur {
					continue
				}
				plain, err := s.d.Keyring.Open(r.Secret, aad(org, r.UserID))
				if err != nil {
					return fmt.Errorf("totp: rekey org %s user %s: %w", org, r.UserID, err)
				}
				sealed, err := s.d.Keyring.Seal(plain, aad(org, r.UserID))
				if err != nil {
					return err
				}
				if err := tx.SetTOTPSecret(ctx, r.UserID, sealed); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Service) row(ctx context.Context, orgID, userID string) (store.UserTOTP, error) {
	var row store.UserTOTP
	err := s.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { row, err = tx.UserTOTP(ctx, userID); return err })
	if errors.Is(err, store.ErrNotFound) {
		return row, errNotEnrolled()
	}
	return row, err
}

// match finds the time step within the skew whose code is code; steps are tried oldest first so the
// step spent is the earliest the code stands for.
func (s *Service) match(row store.UserTOTP, orgID, userID, code string) (int64, bool, error) {
	if len(code) != 6 || !isDigits(code) {
		return 0, false, nil
	}
	secret, err := s.d.Keyring.Open(row.Secret, aad(orgID, userID))
	if err != nil {
		return 0, false, fmt.Errorf("totp: open secret: %w", err)
	}
	now := s.d.Clock().Unix() / period
	opts := totp.ValidateOpts{Period: period, Digits: digits, Algorithm: otp.AlgorithmSHA1}
	found, step := false, int64(0)
	for st := now - skew; st <= now+skew; st++ {
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(st*period, 0).UTC(), opts)
		if err != nil {
			return 0, false, fmt.Errorf("totp: generate: %w", err)
		}
		// Every step is compared, so the time taken does not say which matched.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			found, step = true, st
		}
	}
	return step, found, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (s *Service) limitKey(orgID, userID string) string { return "totp:" + orgID + ":" + userID }

func (s *Service) throttled(ctx context.Context, orgID, userID string) error {
	got, err := s.d.Coord.Peek(ctx, s.limitKey(orgID, userID), s.cfg.MaxFailures, s.cfg.Window)
	if err != nil {
		return fmt.Errorf("totp rate limit: %w", err)
	}
	if !got.Allowed {
		p := problem.New(problem.RateLimited, "rate_limited", "too many wrong codes; try again later")
		p.RetryAfter = got.RetryAfter
		return p
	}
	return nil
}

func (s *Service) failed(ctx context.Context, orgID, userID, why string) error {
	if _, err := s.d.Coord.Hit(ctx, s.limitKey(orgID, userID), s.cfg.MaxFailures, s.cfg.Window); err != nil {
		return fmt.Errorf("totp rate limit: %w", err)
	}
	s.d.Logger.InfoContext(ctx, "totp code refused", "org", orgID, "user", userID, "why", why)
	return errInvalid()
}

func (s *Service) audit(ctx context.Context, tx store.OrgTx, userID string, typ audit.EventType, risk, code string) error {
	if s.d.Audit == nil {
		return nil
	}
	u, err := tx.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	e := audit.Event{Type: typ, At: s.d.Clock().UTC(), Actor: audit.Actor{Kind: "user", ID: userID, Role: string(u.Role)},
		Subject: audit.Subject{Kind: "user", ID: userID}}
	if risk != "" || code != "" {
		e.Details = &audit.Details{Risk: risk, Code: code}
	}
	err = s.d.Audit.Append(ctx, tx, e)
	return err
}
