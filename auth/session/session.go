// Package session signs people in and out and says who a request comes from: a person by session id,
// an agent by device token. It is apart from auth so the public client, which imports auth's
// primitives, does not pull in the store, Redis and the job queue.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Config tunes sessions and login throttling; zero fields take the defaults noted.
type Config struct {
	TTL time.Duration // how long a session lasts; 12h
	// Idle ends a session not used for this long; 2h.
	Idle time.Duration
	// Failed sign-ins allowed per account (5) and per client address (20) in one LoginWindow (15m).
	LoginPerAccount int64
	LoginPerAddress int64
	LoginWindow     time.Duration
}

// Deps are what the service talks to. Clock may be nil (time.Now).
type Deps struct {
	Store  store.Store
	Coord  coord.Coord
	Logger *slog.Logger
	Clock  func() time.Time
	// Audit records password changes; required for ChangePassword.
	Audit *audit.Log
	// TOTP, when set, makes sign-in ask people who enrolled for a code.
	TOTP TOTP
}

// Service signs people in and out, resolves sessions and device tokens, and sweeps expired sessions.
type Service struct {
	store store.Store
	coord coord.Coord
	audit *audit.Log
	totp  TOTP
	log   *slog.Logger
	cfg   Config
	now   func() time.Time
}

// New builds the service.
func New(d Deps, cfg Config) *Service {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Hour
	}
	if cfg.LoginPerAccount <= 0 {
		cfg.LoginPerAccount = 5
	}
	if cfg.LoginPerAddress <= 0 {
		cfg.LoginPerAddress = 20
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	// Warm the dummy hash off the request path, so the first unknown-email login costs one hash, not two.
	go dummyHash()
	return &Service{store: d.Store, coord: d.Coord, audit: d.Audit, totp: d.TOTP, log: d.Logger, cfg: cfg, now: d.Clock}
}

// Principal is who a request comes from.
type Principal struct {
	OrgID string
	Kind  store.ActorKind // store.ActorUser or store.ActorDevice
	ID    string
	Name  string
	Role  store.Role // people only
}

// ErrUnauthenticated means the request carries no credential (a malformed device token is
// "invalid_token"; a malformed session cookie still counts as none).
var ErrUnauthenticated = problem.New(problem.Unauthorized, "unauthenticated",
	"send a device token (Authorization: Bearer ony_dev_…) or sign in")

func errSessionExpired() error {
	return problem.New(problem.Unauthorized, "session_expired", "your session has ended; sign in again")
}

// SignedIn is a new session: the id only the client keeps (the store holds its hash), and whose it is.
type SignedIn struct {
	Token     string
	ExpiresAt time.Time
	User      store.User // without its password hash
}

// dummyHash makes a login for an unknown email cost as much as one for a known email.
// Computed on first use, not at start: it costs as much as a real hash.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("ony-dummy-password-for-timing")
	return h
})

// Login checks email and password and opens a session. clientAddr is the address failed attempts
// are counted against; the caller decides it, because only the caller knows which proxies to trust.
// Every failure, unknown email included, costs one password hash and gets the same answer.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (SignedIn, error) {
	return s.LoginWith(ctx, Credentials{Email: email, Password: password, ClientAddr: clientAddr})
}

// checkPassword is the password step of every sign-in, with its throttling.
func (s *Service) checkPassword(ctx context.Context, email, password, clientAddr string) (store.User, error) {
	email, err := auth.NormalizeEmail(email)
	if err != nil || password == "" {
		return store.User{}, problem.New(problem.Invalid, "invalid_login", "email and password are required")
	}
	limits := s.loginLimits(email, clientAddr)
	if err := s.throttled(ctx, limits); err != nil {
		return store.User{}, err
	}
	var u store.User
	err = s.store.InSystem(ctx, func(tx store.SystemTx) (err error) { u, err = tx.UserByEmail(ctx, email); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	known := err == nil && u.Active
	hash := u.PasswordHash
	if !known {
		hash = dummyHash()
	}
	ok, verr := auth.VerifyPassword(hash, password)
	if verr != nil || !ok || !known {
		if err := s.failed(ctx, limits); err != nil {
			return store.User{}, err
		}
		s.log.InfoContext(ctx, "login failed", "addr", clientAddr)
		return store.User{}, problem.New(problem.Unauthorized, "invalid_credentials", "wrong email or password")
	}
	// The address bucket is not reset: one good password must not buy an address fresh guesses at others.
	_ = s.coord.Reset(ctx, limits[0].key)
	return u, nil
}

// loginLimit is one bucket of failed sign-ins: per account, or per client address.
type loginLimit struct {
	key   string
	limit int64
}

// loginLimits lists the account's bucket first.
func (s *Service) loginLimits(email, clientAddr string) [2]loginLimit {
	return [2]loginLimit{{"login:acct:" + email, s.cfg.LoginPerAccount}, {"login:addr:" + clientAddr, s.cfg.LoginPerAddress}}
}

// throttled refuses the attempt, before any password work, when either bucket is spent.
func (s *Service) throttled(ctx context.Context, limits [2]loginLimit) error {
	for _, l := range limits {
		got, err := s.coord.Peek(ctx, l.key, l.limit, s.cfg.LoginWindow)
		if err != nil {
			return fmt.Errorf("login rate limit: %w", err)
		}
		if !got.Allowed {
			p := problem.New(problem.RateLimited, "too_many_attempts", "too many sign-in attempts; try again later")
			p.RetryAfter = got.RetryAfter
			return p
		}
	}
	return nil
}

// failed counts a failed attempt in both buckets.
func (s *Service) failed(ctx context.Context, limits [2]loginLimit) error {
	for _, l := range limits {
		if _, err := s.coord.Hit(ctx, l.key, l.limit, s.cfg.LoginWindow); err != nil {
			return fmt.Errorf("login rate limit: %w", err)
		}
	}
	return nil
}

// Logout ends the session token belongs to, in orgID; an already ended session is not an error.
func (s *Service) Logout(ctx context.Context, orgID, token string) error {
	err := s.store.InOrg(ctx, orgID, func(tx store.OrgTx) error { return tx.DeleteSession(ctx, auth.HashToken(token)) })
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// ResolveSession returns the person a session id belongs to. A session that is unknown, expired,
// or whose person has been deactivated is "session_expired".
func (s *Service) ResolveSession(ctx context.Context, token string) (Principal, error) {
	if auth.ParseToken(token, auth.SessionIDPrefix) != nil {
		return Principal{}, ErrUnauthenticated
	}
	hash := auth.HashToken(token)
	su, err := s.store.SessionByTokenHash(ctx, hash)
	if err == nil && (!s.live(su.Session, s.now()) || !su.Active) {
		err = store.ErrNotFound
	}
	if err == nil && s.now().Sub(su.Session.LastSeenAt) >= touchEvery {
		// Restarts the idle timeout, at most once a minute, so most requests only read. Team's "last
		// active" is on the same beat. A session ended since the lookup is not touched: ErrNotFound.
		err = s.store.InOrg(ctx, su.Session.OrgID, func(tx store.OrgTx) error {
			if err := tx.TouchSession(ctx, hash, s.now().UTC()); err != nil {
				return err
			}
			return tx.TouchUser(ctx, su.Session.UserID, s.now().UTC())
		})
	}
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, errSessionExpired()
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{OrgID: su.Session.OrgID, Kind: store.ActorUser, ID: su.Session.UserID, Name: su.Name, Role: su.Role}, nil
}

// errInvalidToken answers a device token that was sent but is no use: malformed, unknown or revoked.
// "unauthenticated" is kept for a request that sent none, so an agent can tell "configure a token"
// from "this token is wrong".
func errInvalidToken() error {
	return problem.New(problem.Unauthorized, "invalid_token", "the device token is malformed, unknown or revoked")
}

// ResolveDevice returns the agent a device token belongs to. A malformed, unknown or revoked token is
// "invalid_token".
func (s *Service) ResolveDevice(ctx context.Context, token string) (Principal, error) {
	if auth.ParseToken(token, auth.DeviceTokenPrefix) != nil {
		return Principal{}, errInvalidToken()
	}
	d, err := s.store.DeviceByTokenHash(ctx, auth.HashToken(token))
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.RevokedAt != nil) {
		return Principal{}, errInvalidToken()
	}
	if err != nil {
		return Principal{}, err
	}
	// The console's device list shows when a token was last used; to the minute is enough, so a busy
	// agent's requests stay reads. A failed write costs the figure, never the request.
	if now := s.now().UTC(); d.LastUsedAt == nil || now.Sub(*d.LastUsedAt) >= touchEvery {
		if err := s.store.InOrg(ctx, d.OrgID, func(tx store.OrgTx) error { return tx.TouchDevice(ctx, d.ID, now) }); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "device last-used not recorded", "device", d.ID)
		}
	}
	return Principal{OrgID: d.OrgID, Kind: store.ActorDevice, ID: d.ID, Name: d.Name}, nil
}
