package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/store"
)

// Inbound provider routes (/hooks/{provider}/…) carry no session and no CSRF token: each verifies
// its provider's signature itself. What the server adds is what every route gets: a body limit and
// a deadline, and a Host through which a verified request decides or reports.

const (
	maxHookBody = 1 << 20
	hookTimeout = 30 * time.Second
)

// hookHost is what inbound routes act through: the handoff service's token decisions, the engine's
// status reports, and the team service's chat-account links.
type hookHost struct{ s *Server }

func (h hookHost) Decide(ctx context.Context, a channel.Answer) (store.Handoff, error) {
	ans := handoff.Answer{Token: a.Token, Option: a.Option, Index: a.Index, Channel: a.Channel, From: a.From, TOTP: a.TOTP,
		Code: a.Code, Choice: a.Choice}
	// The answerer's address is read on the contact the kind reaches people on.
	if k, ok := h.s.esc.Kinds().Kind(a.Channel); ok && k.Contact != nil {
		ans.Contact = k.Contact.Name
	}
	return h.s.handoffs.DecideAnswer(ctx, ans)
}

func (h hookHost) Link(ctx context.Context, code, kind, address string) (channel.LinkedPerson, error) {
	if h.s.team == nil {
		return channel.LinkedPerson{}, errors.New("server: linking chat accounts needs the team service (SetTeam)")
	}
	return h.s.team.Link(ctx, code, kind, address)
}

func (h hookHost) Outcome(ctx context.Context, provider, ref, outcome string) error {
	return h.s.esc.Outcome(ctx, provider, ref, outcome)
}

func (h hookHost) Recall(ctx context.Context, token, kind string) (channel.Notification, error) {
	return h.s.esc.Recall(ctx, token, kind)
}

func (h hookHost) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	l, err := h.s.coord.Hit(ctx, "hooks:once:"+key, 1, ttl)
	return l.Allowed, err
}

func (h hookHost) Report(ctx context.Context, provider, ref string, st store.SendState) error {
	return h.s.esc.Report(ctx, provider, ref, st)
}

// Host is what channels that keep their own connection (channel.Runner) act through: the same
// decisions, reports and links as the /hooks/ routes.
func (s *Server) Host() channel.Host { return hookHost{s} }

// HookRoutes lists the inbound routes of the configured channels, or why they cannot be mounted.
func (s *Server) HookRoutes() ([]channel.Mounted, error) {
	if s.esc == nil {
		return nil, nil
	}
	return s.esc.Channels().Routes(hookHost{s})
}

func (s *Server) mountHooks(mux *http.ServeMux) {
	routes, err := s.HookRoutes()
	if err != nil {
		// app.New checks HookRoutes before a server is ever handed out.
		panic(err)
	}
	for _, rt := range routes {
		if rt.Stream {
			// A call's media stream lasts as long as the call; its handler bounds it (voice_agent.max_call).
			mux.Handle(rt.Pattern, rt.Handler)
			continue
		}
		mux.Handle(rt.Pattern, hookLimits(rt.Handler))
	}
}

func hookLimits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), hookTimeout)
		defer cancel()
		r.Body = http.MaxBytesReader(w, r.Body, maxHookBody)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
