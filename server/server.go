// Package server is Ony's HTTP surface: the agent API and the people API under /v1, health checks,
// and the middleware every request passes through.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Config tunes the HTTP surface.
type Config struct {
	PublicURL       string
	MaxPayloadBytes int64
	SecureCookies   bool
	// TrustedProxies are the peers whose X-Forwarded-For names the client (see clientAddr).
	TrustedProxies []netip.Prefix
	// TOTP enables the second-factor routes (issue 13, totp helper); nil answers them not_configured.
	TOTP *totp.Service
	// Metrics counts requests by route pattern and status class; nil records nothing.
	Metrics *metrics.Recorder
}

// Server holds what the handlers need.
type Server struct {
	handoffs *handoff.Service
	esc      *escalation.Engine
	audit    *audit.Log
	sessions *session.Service
	store    store.Store
	coord    coord.Coord
	log      *slog.Logger
	cfg      Config
	// team is the team and identity service (issue 13; SetTeam); nil until wired.
	team *org.Service

	drainOnce sync.Once
	drain     chan struct{}
	// coordDegraded is what the last readiness probe found, so changes are logged once.
	coordDegraded atomic.Bool
	// mounts add routes of other packages (the console) to the same mux. (console)
	mounts []func(*http.ServeMux)
}

// Mount adds fn's routes to the mux Handler builds, behind the same middleware; a route fn registers
// is served as it is, not replaced by the JSON 404. Call it before Handler. (console)
func (s *Server) Mount(fn func(*http.ServeMux)) { s.mounts = append(s.mounts, fn) }

// ClientAddr is the client's address as the server sees it (trusted proxies applied). (console)
func (s *Server) ClientAddr(r *http.Request) string { return clientAddr(r, s.cfg.TrustedProxies) }

// New wires a server.
func New(h *handoff.Service, esc *escalation.Engine, al *audit.Log, sessions *session.Service, s store.Store, c coord.Coord, logger *slog.Logger, cfg Config) *Server {
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = 1 << 20
	}
	return &Server{handoffs: h, esc: esc, audit: al, sessions: sessions, store: s, coord: c, log: logger, cfg: cfg, drain: make(chan struct{})}
}

// Drain makes in-flight long-polls return their current state at once; call it before http.Server.Shutdown.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.drain) }) }

// Handler returns the routed, wrapped handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)

	mux.Handle("POST /v1/auth/login", s.handle(s.login))
	mux.Handle("POST /v1/auth/logout", s.handle(s.authed(s.logout)))
	mux.Handle("GET /v1/auth/me", s.handle(s.authed(s.me)))
	mux.Handle("POST /v1/auth/password", s.handle(s.authed(s.changePassword)))
	s.sessionRoutes(mux) // issue 13: two-step login, sessions, TOTP (server/sessions.go)

	mux.Handle("POST /v1/handoffs", s.handle(s.authed(s.createHandoff)))
	mux.Handle("GET /v1/handoffs", s.handle(s.authed(s.listHandoffs)))
	mux.Handle("GET /v1/handoffs/{id}", s.handle(s.authed(s.getHandoff)))
	mux.Handle("GET /v1/handoffs/{id}/wait", s.handle(s.waitHandoff)) // authenticates itself, to hold through an outage
	mux.Handle("POST /v1/handoffs/{id}/cancel", s.handle(s.authed(s.cancelHandoff)))
	mux.Handle("POST /v1/handoffs/{id}/decide", s.handle(s.authed(s.decideHandoff)))
	mux.Handle("GET /v1/handoffs/{id}/escalation", s.handle(s.authed(s.handoffEscalation)))
	mux.Handle("GET /v1/inbox", s.handle(s.authed(s.inbox)))

	mux.Handle("GET /v1/ladders", s.handle(s.authed(s.listLadders)))
	mux.Handle("GET /v1/ladders/{name}", s.handle(s.authed(s.getLadder)))
	mux.Handle("PUT /v1/ladders/{name}", s.handle(s.authed(s.putLadder)))

	mux.Handle("GET /v1/audit/key", s.handle(s.auditKey))
	mux.Handle("GET /v1/audit/checkpoint", s.handle(s.authed(s.auditCheckpoint)))
	mux.Handle("GET /v1/audit/proof/inclusion", s.handle(s.authed(s.auditInclusion)))
	mux.Handle("GET /v1/audit/proof/consistency", s.handle(s.authed(s.auditConsistency)))
	mux.Handle("GET /v1/audit/leaves", s.handle(s.authed(s.auditLeaves)))

	s.mountTeam(mux) // team and identity (issue 13)
	s.mountHooks(mux)
	for _, m := range s.mounts { // console
		m(mux)
	}

	return s.recoverer(s.logRequests(securityHeaders(jsonNotFound(mux))))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when this replica can serve: the database is reachable and it is not draining.
// Coordination is reported but does not decide: without Redis a replica still serves, with rate limits
// of its own and notifications that reach only its own waiters (the others re-read on their own).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "coordination": "ok"}
	status := http.StatusOK
	if err := s.store.Ping(ctx); err != nil {
		checks["database"], status = "unavailable", http.StatusServiceUnavailable
		s.log.WarnContext(ctx, "readiness: database", "err", err)
	}
	// Coordination does not decide readiness, so it must not make the probe slow either (load balancers
	// often give a probe one second).
	coordCtx, cancelCoord := context.WithTimeout(ctx, 500*time.Millisecond)
	err := s.coord.Ping(coordCtx)
	cancelCoord()
	if err != nil {
		checks["coordination"] = "degraded"
	}
	// Probes come every few seconds: say when coordination degrades and when it recovers, not each time.
	if was := s.coordDegraded.Swap(err != nil); err != nil && !was {
		s.log.WarnContext(ctx, "readiness: coordination degraded; serving with per-replica rate limits", "err", err)
	} else if err == nil && was {
		s.log.InfoContext(ctx, "readiness: coordination recovered")
	}
	select {
	case <-s.drain:
		checks["server"], status = "draining", http.StatusServiceUnavailable
	default:
	}
	writeJSON(w, status, checks)
}

// handlerFunc is a handler that returns its error for one mapper to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// RetryAfterUnavailable is what a request that found the database unreachable is told to wait.
const RetryAfterUnavailable = 2 * time.Second

// writeError is the one place errors become responses: typed problems keep their code and message;
// an unreachable database is 503 "unavailable" with Retry-After; anything else is logged and answered
// with a plain 500 that reveals nothing.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrUnavailable) && r.Context().Err() == nil {
		// The driver's text names the database's address and user: the log says only what happened.
		s.log.WarnContext(r.Context(), "database unavailable", "method", r.Method, "route", r.Pattern)
		err = &problem.Error{Kind: problem.Unavailable, Code: "unavailable",
			Message: "the database cannot be reached; try again shortly", RetryAfter: RetryAfterUnavailable}
	}
	if p, ok := problem.As(err); ok {
		status := p.Kind.Status()
		if p.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(p.RetryAfter.Seconds()+0.999)))
		}
		if p.Kind == problem.Unauthorized {
			// RFC 6750: a bad token is named as such; a missing one gets the bare challenge.
			if p.Code == "invalid_token" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ony", error="invalid_token"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ony"`)
			}
		}
		writeJSON(w, status, errorBody{errorDetail{Code: p.Code, Message: p.Message, Details: p.Details}})
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{errorDetail{Code: "internal_error", Message: "internal error"}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
