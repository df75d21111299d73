package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ony-ai/ony/channel"
)

// Call is what Authorize makes of a stream's token: the decision token, the callee's number and the
// notification the call is about.
type Call struct {
	Token        string
	From         string // the callee's number (who answers decides)
	Notification channel.Notification
}

// Defaults for a Handler's zero fields.
const (
	DefaultStartTimeout  = 5 * time.Second
	DefaultMaxCallLength = 10 * time.Minute
	// readLimit bounds one inbound message: a 20 ms frame is ~300 bytes of JSON; providers may batch.
	readLimit = 64 << 10
)

// Handler serves a provider's media websocket (GET /hooks/{provider}/media). The websocket is sticky
// to the replica that accepted it: a load balancer must keep the upgraded connection where it landed
// (any replica can accept a new one).
type Handler struct {
	Flavor Flavor
	// Authorize turns the stream's "t" parameter into a call; an error refuses the stream (1008).
	Authorize func(ctx context.Context, token string) (Call, error)
	// Run handles the call; its context ends at MaxCallLength, at the provider's stop or when the
	// socket closes. The Handler closes the stream when Run returns.
	Run           func(ctx context.Context, c Call, s *Stream) error
	StartTimeout  time.Duration // default 5 s
	MaxCallLength time.Duration // default 10 min
	MaxCalls      int           // concurrent calls on this replica; 0: no limit
	Logger        *slog.Logger

	active   atomic.Int64
	upgrader websocket.Upgrader
	initOnce sync.Once
}

// Active is how many calls are running.
func (h *Handler) Active() int { return int(h.active.Load()) }

var writePool sync.Pool

func (h *Handler) init() {
	h.initOnce.Do(func() {
		h.upgrader = websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
			WriteBufferPool:  &writePool,
			// Providers send no Origin; the token in the start message is the authentication.
			CheckOrigin: func(*http.Request) bool { return true },
		}
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	log := h.log().With("provider", h.Flavor.String())
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Debug("media: upgrade refused", "err", err)
		return // the upgrader answered already
	}
	defer conn.Close()
	conn.SetReadLimit(readLimit)
	refuse := func(code int, why string) {
		log.Info("media: stream refused", "reason", why, "code", code)
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, why), time.Now().Add(time.Second))
	}
	// Full before anything: do not spend a single-use token on a call that cannot be served.
	if h.MaxCalls > 0 && h.active.Load() >= int64(h.MaxCalls) {
		refuse(websocket.CloseTryAgainLater, "busy")
		return
	}
	start, err := h.awaitStart(conn)
	if err != nil {
		refuse(websocket.ClosePolicyViolation, "no start")
		return
	}
	token := start.Params["t"]
	if token == "" || h.Authorize == nil {
		refuse(websocket.ClosePolicyViolation, "unauthorized")
		return
	}
	actx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	call, err := h.Authorize(actx, token)
	cancel()
	if err != nil {
		refuse(websocket.ClosePolicyViolation, "unauthorized")
		return
	}
	if !h.reserve() {
		refuse(websocket.CloseTryAgainLater, "busy")
		return
	}
	defer h.active.Add(-1)
	_ = conn.SetReadDeadline(time.Time{})

	maxLen := h.MaxCallLength
	if maxLen <= 0 {
		maxLen = DefaultMaxCallLength
	}
	ctx, stop := context.WithTimeout(context.WithoutCancel(r.Context()), maxLen)
	defer stop()
	s := newStream(h.Flavor, conn, start.StreamID, start.CallRef)
	s.start(stop)
	began := time.Now()
	log.Info("media: stream started", "stream", start.StreamID)
	var runErr error
	if h.Run != nil {
		runErr = h.Run(ctx, call, s)
	}
	_ = s.Close()
	s.wg.Wait()
	attrs := []any{"stream", start.StreamID, "seconds", int(time.Since(began).Seconds())}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		attrs = append(attrs, "err", runErr)
	}
	log.Info("media: stream ended", attrs...)
}

func (h *Handler) reserve() bool {
	for {
		n := h.active.Load()
		if h.MaxCalls > 0 && n >= int64(h.MaxCalls) {
			return false
		}
		if h.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// awaitStart reads until the start message, within StartTimeout.
func (h *Handler) awaitStart(conn *websocket.Conn) (Event, error) {
	d := h.StartTimeout
	if d <= 0 {
		d = DefaultStartTimeout
	}
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return Event{}, err
	}
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return Event{}, err
		}
		if typ != websocket.TextMessage {
			continue
		}
		ev, err := Decode(h.Flavor, msg)
		if err != nil {
			continue
		}
		switch ev.Kind {
		case Start:
			return ev, nil
		case Stop:
			return Event{}, errors.New("media: stop before start")
		}
	}
}
