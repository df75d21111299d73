package session

// Two-step sign-in with TOTP, sessions started by other means (SSO, invites), the list of a person's
// sessions and their revocation, the idle timeout and the cookie's name (issue 13, totp helper).

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// TOTP is the second factor as sign-in needs it (auth/totp.Service).
type TOTP interface {
	Enrolled(ctx context.Context, orgID, userID string) (bool, error)
	Verify(ctx context.Context, orgID, userID, code string) error
}

// ChallengePrefix marks the token that carries a sign-in from its password step to its code step.
const ChallengePrefix = "ony_chl_"

const (
	challengeTTL      = 5 * time.Minute
	challengeAttempts = 5
	touchEvery        = time.Minute // last_seen_at is written at most this often per session
	maxUserAgent      = 200
)

// CookieName is the session cookie's name: __Host- prefixed when the public URL is https (the browser
// then insists on Secure, Path=/ and no Domain), so a sibling subdomain cannot plant or shadow it.
func CookieName(secure bool) string {
	if secure {
		return "__Host-ony_session"
	}
	return "ony_session"
}

// Credentials are what a sign-in form or POST /v1/auth/login carries.
type Credentials struct {
	Email, Password string
	TOTP            string // optional: the code in the same request
	ClientAddr      string
	UserAgent       string
}

// ChallengeFrom returns the challenge a "totp_required" answer carries.
func ChallengeFrom(err error) (string, bool) {
	p, ok := problem.As(err)
	if !ok || p.Code != "totp_required" {
		return "", false
	}
	d, ok := p.Details.(map[string]string)
	return d["challenge"], ok && d["challenge"] != ""
}

func errTOTPRequired(challenge string) error {
	p := problem.New(problem.Unauthorized, "totp_required", "enter the code from your authenticator app")
	p.Details = map[string]string{"challenge": challenge}
	return p
}

func errBadChallenge() error {
	return problem.New(problem.Unauthorized, "invalid_challenge", "this sign-in has expired; start again")
}

// LoginWith checks email and password and then, for a person with TOTP, the code: given in c, it is
// checked at once; missing, the answer is "totp_required" with a challenge for LoginTOTP.
func (s *Service) LoginWith(ctx context.Context, c Credentials) (SignedIn, error) {
	u, err := s.checkPassword(ctx, c.Email, c.Password, c.ClientAddr)
	if err != nil {
		return SignedIn{}, err
	}
	if s.totp != nil {
		on, err := s.totp.Enrolled(ctx, u.OrgID, u.ID)
		if err != nil {
			return SignedIn{}, err
		}
		if on && c.TOTP == "" {
			tok, err := auth.NewToken(ChallengePrefix)
			if err != nil {
				return SignedIn{}, err
			}
			ch := store.LoginChallenge{IDHash: tok.Hash, UserID: u.ID, ExpiresAt: s.now().UTC().Add(challengeTTL)}
			if err := s.store.InOrg(ctx, u.OrgID, func(tx store.OrgTx) error { return tx.CreateLoginChallenge(ctx, ch) }); err != nil {
				return SignedIn{}, err
			}
			return SignedIn{}, errTOTPRequired(tok.Plain)
		}
		if on {
			if err := s.totp.Verify(ctx, u.OrgID, u.ID, c.TOTP); err != nil {
				return SignedIn{}, err
			}
		}
	}
	return s.Issue(ctx, u, c.ClientAddr, c.UserAgent)
}

// LoginTOTP finishes a two-step sign-in: the challenge from "totp_required" and a code.
func (s *Service) LoginTOTP(ctx context.Context, challenge, code, clientAddr, userAgent string) (SignedIn, error) {
	if auth.ParseToken(challenge, ChallengePrefix) != nil || s.totp == nil {
		return SignedIn{}, errBadChallenge()
	}
	hash := auth.HashToken(challenge)
	var ch store.LoginChallenge
	err := s.store.InSystem(ctx, func(tx store.SystemTx) (err error) { ch, err = tx.LoginChallengeByHash(ctx, hash); return err })
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.now().Before(ch.ExpiresAt)) {
		return SignedIn{}, errBadChallenge()
	}
	if err != nil {
		return SignedIn{}, err
	}
	var counted bool
	err = s.store.InOrg(ctx, ch.OrgID, func(tx store.OrgTx) (err error) {
		counted, err = tx.CountChallengeAttempt(ctx, hash, challengeAttempts)
		return err
	})
	if err != nil {
		return SignedIn{}, err
	}
	if !counted {
		return SignedIn{}, errBadChallenge()
	}
	if err := s.totp.Verify(ctx, ch.OrgID, ch.UserID, code); err != nil {
		return SignedIn{}, err
	}
	var u store.User
	err = s.store.InOrg(ctx, ch.OrgID, func(tx store.OrgTx) error {
		if err := tx.DeleteLoginChallenge(ctx, hash); err != nil {
			return err
		}
		var err error
		u, err = tx.UserByID(ctx, ch.UserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Active) {
		return SignedIn{}, errBadChallenge()
	}
	if err != nil {
		return SignedIn{}, err
	}
	return s.Issue(ctx, u, clientAddr, userAgent)
}

// Issue starts a session for a person already authenticated another way (SSO, an accepted invite,
// a completed two-step sign-in). Each call makes a new session id.
func (s *Service) Issue(ctx context.Context, u store.User, clientAddr, userAgent string) (SignedIn, error) {
	if !u.Active {
		return SignedIn{}, problem.New(problem.Forbidden, "deactivated", "this account is deactivated")
	}
	tok, err := auth.NewToken(auth.SessionIDPrefix)
	if err != nil {
		return SignedIn{}, err
	}
	now := s.now().UTC()
	sess := store.Session{IDHash: tok.Hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL),
		LastSeenAt: now, UserAgent: CleanUserAgent(userAgent)}
	err = s.store.InOrg(ctx, u.OrgID, func(tx store.OrgTx) error {
		if err := tx.CreateSession(ctx, sess); err != nil {
			return err
		}
		return tx.TouchUser(ctx, u.ID, now) // signing in is activity (Team's "last active")
	})
	if err != nil {
		return SignedIn{}, err
	}
	s.log.InfoContext(ctx, "login", "org", u.OrgID, "user", u.ID, "addr", clientAddr)
	u.PasswordHash = ""
	return SignedIn{Token: tok.Plain, ExpiresAt: sess.ExpiresAt, User: u}, nil
}

// CleanUserAgent keeps a User-Agent fit for a list: printable, at most 200 characters.
func CleanUserAgent(ua string) string {
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, ua)
	if r := []rune(ua); len(r) > maxUserAgent {
		ua = string(r[:maxUserAgent])
	}
	return strings.TrimSpace(ua)
}

// SessionInfo is one session as its person sees it in a list.
type SessionInfo struct {
	PublicID   string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

// List returns the person's live sessions, newest first; currentToken marks the caller's own.
func (s *Service) List(ctx context.Context, orgID, userID, currentToken string) ([]SessionInfo, error) {
	var ss []store.Session
	if err := s.store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { ss, err = tx.UserSessions(ctx, userID); return err }); err != nil {
		return nil, err
	}
	var cur []byte
	if currentToken != "" {
		cur = auth.HashToken(currentToken)
	}
	now := s.now()
	out := []SessionInfo{}
	for _, x := range ss {
		if !s.live(x, now) {
			continue
		}
		out = append(out, SessionInfo{PublicID: x.PublicID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt,
			UserAgent: x.UserAgent, Current: cur != nil && subtle.ConstantTimeCompare(cur, x.IDHash) == 1})
	}
	return out, nil
}

// Revoke ends one of the person's own sessions by its public id; another person's, or an unknown
// id, is the same "not found".
func (s *Service) Revoke(ctx context.Context, orgID, userID, publicID string) error {
	err := s.store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return tx.DeleteUserSession(ctx, userID, publicID) })
	if errors.Is(err, store.ErrNotFound) {
		return problem.New(problem.NotFound, "not_found", "no such session")
	}
	return err
}

// RevokeAll ends every session of the person but keepToken's ("" ends all): what a change of role,
// password or second factor calls, so privileges are never carried by an old session.
func (s *Service) RevokeAll(ctx context.Context, orgID, userID, keepToken string) (int, error) {
	var keep []byte
	if keepToken != "" {
		keep = auth.HashToken(keepToken)
	}
	var n int
	err := s.store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { n, err = tx.DeleteUserSessions(ctx, userID, keep); return err })
	return n, err
}

// live: within both the absolute and the idle timeout.
func (s *Service) live(x store.Session, now time.Time) bool {
	return now.Before(x.ExpiresAt) && now.Before(x.LastSeenAt.Add(s.cfg.Idle))
}
