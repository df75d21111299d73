package media_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/media/mediatest"
)

const goodToken = "tok-good"

var flavors = []media.Flavor{media.Twilio, media.SignalWire, media.Telnyx, media.Plivo}

// serve starts a Handler whose Authorize accepts goodToken; run is its Run.
func serve(t *testing.T, f media.Flavor, run func(context.Context, media.Call, *media.Stream) error, tune ...func(*media.Handler)) (*media.Handler, string, *atomic.Int32) {
	t.Helper()
	var authorized atomic.Int32
	h := &media.Handler{
		Flavor: f,
		Authorize: func(_ context.Context, token string) (media.Call, error) {
			authorized.Add(1)
			if token != goodToken {
				return media.Call{}, errors.New("unknown token")
			}
			return media.Call{Token: token, From: "+351912345678", Notification: channel.Notification{Action: "deploy"}}, nil
		},
		Run: run,
	}
	for _, f := range tune {
		f(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL, &authorized
}

// TestBridge runs one call per flavor: inbound audio and a key reach Run decoded; audio Run sends
// goes out in order in 160-byte frames, paced, with its mark after it; the mark's echo counts as
// played; the provider's stop ends Run's context.
func TestBridge(t *testing.T) {
	t.Parallel()
	for _, f := range flavors {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			tone := mediatest.Tone(440, 200*time.Millisecond)
			out := mediatest.Tone(660, 125*time.Millisecond) // 1000 bytes: 6 whole frames and 40 bytes
			type result struct {
				inbound           []byte
				digits            string
				marks             []string
				played            time.Duration
				stopped, ctxEnded bool
				elapsed           time.Duration
				callFrom          string
			}
			res := make(chan result, 1)
			_, url, _ := serve(t, f, func(ctx context.Context, c media.Call, s *media.Stream) error {
				var r result
				r.callFrom = c.From
				began := time.Now()
				s.Send(out)
				s.Mark("end")
				for {
					ev, err := s.Recv(ctx)
					if err != nil {
						r.ctxEnded = ctx.Err() != nil
						res <- r
						return nil
					}
					switch ev.Kind {
					case media.Media:
						if len(r.inbound) < len(tone) {
							r.inbound = append(r.inbound, ev.Payload...)
						}
					case media.DTMF:
						r.digits += ev.Digit
					case media.Mark:
						r.marks = append(r.marks, ev.Name)
						r.played = s.Played()
						r.elapsed = time.Since(began)
					case media.Stop:
						r.stopped = true
					}
				}
			})
			c := mediatest.Dial(t, url, f, map[string]string{"t": goodToken})
			c.Play(tone)
			if !c.WaitMarks(1, 5*time.Second) {
				t.Fatal("the mark never came back")
			}
			c.DTMF("1")
			c.DTMF("#")
			time.Sleep(300 * time.Millisecond) // the tone (200 ms) has been spoken
			c.Stop()
			var r result
			select {
			case r = <-res:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not end after stop")
			}
			if !bytes.Equal(c.Received(), out) {
				t.Errorf("received %d bytes, not the %d sent in order", len(c.Received()), len(out))
			}
			sizes := c.Sizes()
			want := []int{160, 160, 160, 160, 160, 160, 40}
			if !equalInts(sizes, want) {
				t.Errorf("frames %v, want %v", sizes, want)
			}
			if r.callFrom != "+351912345678" {
				t.Errorf("Run got call from %q", r.callFrom)
			}
			if !bytes.Contains(r.inbound, tone[:800]) {
				t.Errorf("inbound audio did not reach Run as played (%d bytes)", len(r.inbound))
			}
			if r.digits != "1#" {
				t.Errorf("digits %q", r.digits)
			}
			if len(r.marks) != 1 || r.marks[0] != "end" {
				t.Errorf("marks %v", r.marks)
			}
			if r.played != 125*time.Millisecond {
				t.Errorf("Played = %v, want 125ms", r.played)
			}
			// Paced, not burst: three frames go at once (the provider may hold 40 ms ahead), then
			// one per 20 ms, so the seventh comes at least 4 × 20 ms after the first.
			if a := c.Arrivals(); len(a) == 7 {
				if span := a[6].Sub(a[0]); span < 60*time.Millisecond {
					t.Errorf("7 frames arrived within %v: audio was not paced", span)
				}
			}
			// The mark comes back once the 125 ms before it played.
			if r.elapsed < 120*time.Millisecond {
				t.Errorf("mark came back after %v, before its audio played", r.elapsed)
			}
			if f != media.Plivo && !r.stopped {
				t.Error("Run never saw the stop")
			}
			if !r.ctxEnded {
				t.Error("Run's context did not end with the stream")
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClear: Clear drops the queued audio (nothing more goes out), sends the provider's clear, and
// audio whose mark was not acknowledged does not count as played.
func TestClear(t *testing.T) {
	t.Parallel()
	for _, f := range []media.Flavor{media.Twilio, media.Plivo} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			played := make(chan time.Duration, 1)
			_, url, _ := serve(t, f, func(ctx context.Context, _ media.Call, s *media.Stream) error {
				s.Send(mediatest.Tone(440, 100*time.Millisecond))
				s.Mark("a")
				s.Send(mediatest.Tone(440, 5*time.Second))
				s.Mark("b")
				for {
					ev, err := s.Recv(ctx)
					if err != nil {
						return err
					}
					if ev.Kind == media.Mark && ev.Name == "a" {
						time.Sleep(60 * time.Millisecond)
						s.Clear()
						if q := s.Queued(); q != 0 {
							t.Errorf("Queued after Clear = %v", q)
						}
						time.Sleep(100 * time.Millisecond)
						played <- s.Played()
					}
				}
			})
			c := mediatest.Dial(t, url, f, map[string]string{"t": goodToken})
			if !c.WaitClear(5 * time.Second) {
				t.Fatal("no clear reached the provider")
			}
			var p time.Duration
			select {
			case p = <-played:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not report")
			}
			n := len(c.Received())
			time.Sleep(100 * time.Millisecond)
			if m := len(c.Received()); m != n {
				t.Errorf("audio kept coming after Clear: %d → %d bytes", n, m)
			}
			if n >= 8*1000 {
				t.Errorf("%d bytes went out: the 5 s queue was not dropped", n)
			}
			if p != 100*time.Millisecond {
				t.Errorf("Played = %v, want 100ms (mark b was cleared)", p)
			}
		})
	}
}

// TestRefused: a bad or missing token, or no start in time, closes with 1008 and never runs the call.
func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params map[string]string
		raw    bool // send no start at all
	}{
		{"bad token", map[string]string{"t": "forged"}, false},
		{"no token", map[string]string{"x": "1"}, false},
		{"no start", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ran atomic.Bool
			_, url, auth := serve(t, media.Twilio, func(context.Context, media.Call, *media.Stream) error {
				ran.Store(true)
				return nil
			}, func(h *media.Handler) { h.StartTimeout = 200 * time.Millisecond })
			var code int
			if tt.raw {
				conn, _, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`))
				_, _, err = conn.ReadMessage()
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("read: %v, want a close", err)
				}
				code = ce.Code
			} else {
				c := mediatest.Dial(t, url, media.Twilio, tt.params)
				var ok bool
				if code, ok = c.WaitClosed(5 * time.Second); !ok {
					t.Fatal("the socket stayed open")
				}
			}
			if code != websocket.ClosePolicyViolation {
				t.Errorf("close code %d, want 1008", code)
			}
			if ran.Load() {
				t.Error("Run ran for a refused stream")
			}
			if tt.params["t"] == "" && auth.Load() != 0 {
				t.Error("Authorize was asked without a token")
			}
		})
	}
}

// TestMaxCalls: beyond MaxCalls a stream is refused with 1013 before its token is spent; once a
// call ends its place is free again.
func TestMaxCalls(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var running atomic.Int32
	h, url, auth := serve(t, media.Telnyx, func(ctx context.Context, _ media.Call, _ *media.Stream) error {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, func(h *media.Handler) { h.MaxCalls = 2 })
	a := mediatest.Dial(t, url, media.Telnyx, map[string]string{"t": goodToken})
	b := mediatest.Dial(t, url, media.Telnyx, map[string]string{"t": goodToken})
	deadline := time.Now().Add(5 * time.Second)
	for h.Active() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h.Active() != 2 {
		t.Fatalf("Active = %d, want 2", h.Active())
	}
	c := mediatest.Dial(t, url, media.Telnyx, map[string]string{"t": goodToken})
	code, ok := c.WaitClosed(5 * time.Second)
	if !ok || code != websocket.CloseTryAgainLater {
		t.Errorf("third call: closed %v code %d, want 1013", ok, code)
	}
	if n := auth.Load(); n != 2 {
		t.Errorf("Authorize asked %d times, want 2 (the refused call's token is not spent)", n)
	}
	close(release)
	for _, cl := range []*mediatest.Client{a, b} {
		if code, ok := cl.WaitClosed(5 * time.Second); !ok || code != websocket.CloseNormalClosure {
			t.Errorf("a finished call closed %v code %d, want 1000", ok, code)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for h.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if h.Active() != 0 {
		t.Errorf("Active = %d after the calls ended", h.Active())
	}
	if running.Load() != 2 {
		t.Errorf("%d calls ran, want 2", running.Load())
	}
}

// TestMaxCallLength: Run's context ends at MaxCallLength and the call closes normally.
func TestMaxCallLength(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ended time.Time
	_, url, _ := serve(t, media.SignalWire, func(ctx context.Context, _ media.Call, s *media.Stream) error {
		for {
			if _, err := s.Recv(ctx); err != nil {
				mu.Lock()
				ended = time.Now()
				mu.Unlock()
				return err
			}
		}
	}, func(h *media.Handler) { h.MaxCallLength = 150 * time.Millisecond })
	// The call's clock starts once the handler has the start message, before Run: timed from Run's
	// own start, a run could end a few microseconds short of the length. Timed from before the dial,
	// it cannot.
	dialed := time.Now()
	c := mediatest.Dial(t, url, media.SignalWire, map[string]string{"t": goodToken})
	code, ok := c.WaitClosed(5 * time.Second)
	if !ok || code != websocket.CloseNormalClosure {
		t.Fatalf("closed %v code %d, want 1000", ok, code)
	}
	mu.Lock()
	defer mu.Unlock()
	if took := ended.Sub(dialed); took < 150*time.Millisecond {
		t.Errorf("Run ended %v after the dial, before MaxCallLength", took)
	}
}

// TestCloseFromRun: Close (what the agent does to fall back to the keypad) ends the socket normally
// and later calls are harmless.
func TestCloseFromRun(t *testing.T) {
	t.Parallel()
	_, url, _ := serve(t, media.Twilio, func(ctx context.Context, _ media.Call, s *media.Stream) error {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		_ = s.Close()
		s.Send([]byte{1, 2, 3})
		s.Clear()
		if _, err := s.Recv(ctx); !errors.Is(err, media.ErrClosed) {
			t.Errorf("Recv after Close = %v, want ErrClosed", err)
		}
		return nil
	})
	c := mediatest.Dial(t, url, media.Twilio, map[string]string{"t": goodToken})
	if code, ok := c.WaitClosed(5 * time.Second); !ok || code != websocket.CloseNormalClosure {
		t.Fatalf("closed %v code %d, want 1000", ok, code)
	}
	if len(c.Received()) != 0 || c.Clears() != 0 {
		t.Error("something was sent after Close")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsHoldNoSecrets: with debug logging on, neither tokens, parameters, the callee's number nor
// audio reach the log — for a refused stream and for a call that carried audio both ways.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	var buf syncBuf
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tone := mediatest.Tone(440, 100*time.Millisecond)
	h, url, _ := serve(t, media.Twilio, func(ctx context.Context, _ media.Call, s *media.Stream) error {
		for {
			ev, err := s.Recv(ctx)
			if err != nil {
				return err
			}
			if ev.Kind == media.Media {
				s.Send(ev.Payload)
			}
		}
	}, func(h *media.Handler) { h.Logger = logger })
	bad := mediatest.Dial(t, url, media.Twilio, map[string]string{"t": "canary-forged-token"})
	if _, ok := bad.WaitClosed(5 * time.Second); !ok {
		t.Fatal("forged token not refused")
	}
	c := mediatest.Dial(t, url, media.Twilio, map[string]string{"t": goodToken, "x": "canary-param"})
	c.Play(tone)
	if !c.WaitReceived(len(tone), 5*time.Second) {
		t.Fatal("no echo")
	}
	c.DTMF("7")
	c.Stop()
	if code, ok := c.WaitClosed(5 * time.Second); !ok || code != websocket.CloseNormalClosure {
		t.Fatalf("closed %v %d", ok, code)
	}
	for deadline := time.Now().Add(5 * time.Second); h.Active() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the handler logs the end before it frees the call's place
	}
	t.Log("checked at", time.Now().Format("15:04:05.000"))
	log := buf.String()
	if !strings.Contains(log, "stream refused") || !strings.Contains(log, "stream ended") {
		t.Fatalf("the log misses the refusal or the end:\n%s", log)
	}
	for _, secret := range []string{"canary-forged-token", goodToken, "canary-param", "912345678",
		base64.StdEncoding.EncodeToString(tone[:48]), "digit"} {
		if strings.Contains(log, secret) {
			t.Errorf("log holds %q", secret)
		}
	}
}
