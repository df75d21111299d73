package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/metrics"
)

// opsHandler serves the operator's listener (metrics.listen): Prometheus metrics under /metrics and
// Go's profiler. It is never mounted on the public listener, because a heap profile shows what the
// process holds.
func opsHandler(m *metrics.Recorder) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// ListenOps binds the operator's listener (metrics.listen); nil when none is configured. `ony serve`
// binds it beside the public one, before anything is set up (cmd/ony/serve.go says why).
func ListenOps(c *config.Config) (net.Listener, error) {
	addr := c.Metrics.Listen
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (metrics.listen): %w", addr, err)
	}
	return l, nil
}

// startOps serves the operator's listener, a.Ops or else one it binds, and returns the function that
// shuts it down; a taken address fails the start, as the public listener's does.
func (a *App) startOps() (stop func(context.Context), err error) {
	l := a.Ops
	if l == nil {
		if l, err = ListenOps(a.Config); err != nil || l == nil {
			return func(context.Context) {}, err
		}
	}
	srv := &http.Server{
		Handler:           opsHandler(a.Metrics),
		ReadHeaderTimeout: 10 * time.Second,
		// A CPU profile or trace streams for as many seconds as asked; pprof refuses more than this.
		WriteTimeout: 2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Warn("metrics listener", "err", err)
		}
	}()
	a.Log.Info("metrics listening", "addr", l.Addr().String())
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}
