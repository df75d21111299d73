// Package testserver runs a whole Ony instance in-process for tests — the same wiring as `ony serve` —
// on a fresh database of the chosen dialect, with an organization, people of every role and an agent.
package testserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testredis"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
)

// Options choose the instance's parts.
type Options struct {
	Dialect string // "sqlite" (default) or "postgres"
	// DatabaseURL reuses an existing PostgreSQL schema (from testdb.PostgresURL) instead of a new one,
	// so several instances can act as replicas of one database.
	DatabaseURL string
	// DataDir reuses a data directory (SQLite file and keyring); empty means a fresh temp dir.
	DataDir string
	Redis   bool // coordinate through a real Redis instead of memory
	// RedisPrefix shares one Redis namespace between replicas; empty means a fresh one.
	RedisPrefix string
	// Configure may adjust the configuration before the instance starts.
	Configure func(*config.Config)
	Clock     func() time.Time
	// Logger receives the instance's logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient is used for outgoing callbacks instead of the guarded client; leave it nil to test
	// the guard (callbacks to a local receiver then need callbacks.allow_private in Configure).
	HTTPClient *http.Client
	// Resolver resolves callback hosts (netguardtest.Resolver), so a name can lead where a test wants.
	Resolver *net.Resolver
	// WaitRecheck overrides how often long-polls re-read without a notification.
	WaitRecheck time.Duration
	// Kinds add channel kinds to the built-in ones, and Channels add channels (simulated providers,
	// a test's own kind) to the configured ones.
	Kinds    []channel.Kind
	Channels []channel.Channel
	// ObserveLateness is passed to app.Options (escalation job lateness, for benchmarks).
	ObserveLateness func(kind string, late time.Duration)
	// StepUp keeps the production step-up policy (high and critical approvals need a TOTP code);
	// without it no approval needs one, so tests about other things approve as before (issue 13).
	StepUp bool
	// Dial wraps every outbound dial of the instance's own clients (app.Options.Dial).
	Dial func(next app.DialFunc) app.DialFunc
}

// Instance is a running server with its fixtures.
type Instance struct {
	App         *app.App
	URL         string
	OrgID       string
	DeviceToken string
	DeviceID    string
	// People of each role; all share Password.
	Admin, Member, Viewer User
	Password              string
	DatabaseURL           string
	DataDir               string
	RedisPrefix           string

	cancel context.CancelFunc
	done   chan error
}

// User is a person in the instance's organization.
type User struct {
	ID, Email, Name string
}

// Password is every fixture person's password.
const Password = "correct horse battery staple"

// Start runs an instance until the test ends.
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	// Every password an instance under test hashes (its seeded admin, fixtures, people the test adds)
	// costs 100,000 iterations instead of 600,000: a second each under -race.
	auth.UseTestWorkFactor()
	if o.Dialect == "" {
		o.Dialect = "sqlite"
	}
	cfg := config.Default()
	cfg.DataDir = o.DataDir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
		if o.Dialect == "sqlite" {
			testdb.SeedSQLite(t, filepath.Join(cfg.DataDir, sqlite.FileName))
		}
	}
	if o.Dialect == "postgres" {
		if o.DatabaseURL == "" {
			o.DatabaseURL = testdb.PostgresURL(t)
		}
		cfg.Database.URL = config.Secret(o.DatabaseURL)
		cfg.Database.MaxOpenConns = 8
	}
	if o.Redis {
		cfg.Redis.URL = config.Secret(testredis.URL(t))
		if o.RedisPrefix == "" {
			o.RedisPrefix = testredis.Prefix(t)
		}
		cfg.Redis.Prefix = o.RedisPrefix
	}
	cfg.Jobs.PollInterval = config.Duration(50 * time.Millisecond)
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = l.Addr().String()
	cfg.PublicURL = "http://" + l.Addr().String()
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := o.Logger
	if logger == nil {
		logger = testdb.Discard
	}
	a, err := app.New(ctx, &cfg, logger, app.Options{Clock: o.Clock, HTTPClient: o.HTTPClient, Resolver: o.Resolver, Kinds: o.Kinds, Channels: o.Channels,
		ObserveLateness: o.ObserveLateness, WaitRecheck: o.WaitRecheck, StepUpPolicy: stepUpPolicy(o.StepUp), Dial: o.Dial})
	if err != nil {
		cancel()
		l.Close()
		t.Fatalf("testserver: %v", err)
	}
	if err := a.StartJobs(ctx); err != nil {
		cancel()
		t.Fatalf("testserver: start jobs: %v", err)
	}
	// URL is where the test reaches the server, even when Configure gave it another public URL (an
	// https one Telegram's webhooks need).
	in := &Instance{App: a, URL: "http://" + l.Addr().String(), Password: Password, DatabaseURL: o.DatabaseURL, DataDir: cfg.DataDir,
		RedisPrefix: o.RedisPrefix, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Serve(ctx, l) }()
	t.Cleanup(func() { in.Stop(t) })
	return in
}

// Stop shuts the instance down gracefully (idempotent).
func (in *Instance) Stop(t testing.TB) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	if err := <-in.done; err != nil {
		t.Errorf("testserver: shutdown: %v", err)
	}
}

// Seed creates an organization with an admin, a member, a viewer and one agent device.
func (in *Instance) Seed(t testing.TB) *Instance {
	t.Helper()
	ctx := context.Background()
	s := in.App.Store
	now := time.Now()
	in.OrgID = uuid.NewString()
	err := s.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		return tx.CreateOrg(ctx, store.Org{ID: in.OrgID, Name: "Acme", MaxTimeout: 24 * time.Hour, CreatedAt: now})
	})
	if err != nil {
		t.Fatalf("seed org: %v", err)
	}
	in.Admin = in.AddUser(t, store.RoleAdmin, "Ada Admin")
	in.Member = in.AddUser(t, store.RoleMember, "Mia Member")
	in.Viewer = in.AddUser(t, store.RoleViewer, "Vic Viewer")
	d, err := org.Service{Store: s, Audit: in.App.Audit}.CreateDevice(ctx, audit.Actor{Kind: "system", ID: "test"}, in.OrgID, "test agent")
	if err != nil {
		t.Fatalf("seed device: %v", err)
	}
	in.DeviceID, in.DeviceToken = d.DeviceID, d.Token
	return in
}

// AddUser adds a person with Password to the seeded organization.
func (in *Instance) AddUser(t testing.TB, role store.Role, name string) User {
	t.Helper()
	hash := fixtureHash()
	u := User{ID: uuid.NewString(), Email: "u-" + uuid.NewString()[:8] + "@acme.test", Name: name}
	err := in.App.Store.InOrg(context.Background(), in.OrgID, func(tx store.OrgTx) error {
		return tx.CreateUser(context.Background(), store.User{ID: u.ID, Email: u.Email, Name: name, PasswordHash: hash,
			Role: role, Timezone: "UTC", Active: true, CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatalf("add user: %v", err)
	}
	return u
}

// Agent returns a client authenticated as the seeded device.
func (in *Instance) Agent(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(in.URL, in.DeviceToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Person returns a client signed in as u.
func (in *Instance) Person(t testing.TB, u User) *client.Client {
	t.Helper()
	return PersonAt(t, in.URL, in.Session(t, in.OrgID, u.ID))
}

// Session signs a user in without a password check, writing the session row the way login does, and
// returns the cookie value. A real login costs a password hash (100,000 iterations here, a fraction
// of a second under -race); the login tests do that on purpose.
func (in *Instance) Session(t testing.TB, orgID, userID string) string {
	t.Helper()
	tok, err := auth.NewToken(auth.SessionIDPrefix)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	err = in.App.Store.InOrg(context.Background(), orgID, func(tx store.OrgTx) error {
		return tx.CreateSession(context.Background(), store.Session{IDHash: tok.Hash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatalf("session for %s: %v", userID, err)
	}
	return tok.Plain
}

// PersonAt returns a client of the server at base carrying session cookie sess.
func PersonAt(t testing.TB, base, sess string) *client.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{{Name: server.SessionCookie, Value: sess, Path: "/"}})
	c, err := client.New(base, "", &client.Options{HTTPClient: &http.Client{Transport: testhttp.Client.Transport, Jar: jar, Timeout: 90 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixtureHash is computed once per test binary.
var fixtureHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(Password)
	if err != nil {
		panic(err)
	}
	return h
})

// stepUpPolicy is nil (the production default) when a test asks for step-up, else a policy that
// requires it for no risk.
func stepUpPolicy(on bool) func(context.Context, string) ([]string, error) {
	if on {
		return nil
	}
	return func(context.Context, string) ([]string, error) { return nil, nil }
}
