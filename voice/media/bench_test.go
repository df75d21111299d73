package media_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/media/mediatest"
)

// BenchmarkMediaCalls runs 200 concurrent fake calls through one Handler whose Run echoes inbound
// audio back, for a 5 s window per iteration. It reports frames forwarded per second, the added
// latency per frame (from Recv returning it in Run to the pacer having written it) at p50/p99, the
// whole round trip seen by the fake provider (its send → Ony's decode, Run, pacer → its receipt,
// both loopback legs and the client's own JSON included) at p50/p99, and
// memory per call: the live heap+stack delta with all calls up, divided by N. That delta includes the
// in-process fake clients (their goroutines and buffers), so it is an upper bound for Ony's side;
// KiB/call-over-bare-ws subtracts the same clients talking to a server that only reads.
func BenchmarkMediaCalls(b *testing.B) {
	const n = 200
	const window = 5 * time.Second
	var (
		mu        sync.Mutex
		latencies []time.Duration
		rtts      []time.Duration
		frames    atomic.Int64
		measuring atomic.Bool
	)
	h := &media.Handler{
		Flavor: media.Twilio,
		Authorize: func(context.Context, string) (media.Call, error) {
			return media.Call{Token: goodToken}, nil
		},
		Run: func(ctx context.Context, _ media.Call, s *media.Stream) error {
			var qmu sync.Mutex
			var fifo []time.Time
			local := make([]time.Duration, 0, 512)
			media.SetFrameHook(s, func() {
				now := time.Now()
				qmu.Lock()
				if len(fifo) > 0 {
					if measuring.Load() {
						local = append(local, now.Sub(fifo[0]))
						frames.Add(1)
					}
					fifo = fifo[1:]
				}
				qmu.Unlock()
			})
			defer func() {
				qmu.Lock()
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
				qmu.Unlock()
			}()
			for {
				ev, err := s.Recv(ctx)
				if err != nil {
					return nil
				}
				if ev.Kind == media.Media {
					qmu.Lock()
					fifo = append(fifo, time.Now())
					qmu.Unlock()
					s.Send(ev.Payload)
				}
			}
		},
		MaxCalls: n,
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tone := mediatest.Tone(440, time.Second)

	bare := baseline(b, n, tone)
	var perCall, fps float64
	var p50, p99, rtt50, rtt99 time.Duration
	for b.Loop() {
		latencies, rtts, frames = latencies[:0], rtts[:0], atomic.Int64{}
		rtt := mediatest.RoundTrip(func(d time.Duration) {
			if measuring.Load() {
				mu.Lock()
				rtts = append(rtts, d)
				mu.Unlock()
			}
		})
		before := memNow()
		clients := make([]*mediatest.Client, n)
		for i := range clients {
			clients[i] = mediatest.Dial(b, srv.URL, media.Twilio, map[string]string{"t": goodToken}, mediatest.Loop(tone), mediatest.Discard(), rtt)
		}
		for h.Active() < n {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // warm up
		measuring.Store(true)
		began := time.Now()
		time.Sleep(window)
		measuring.Store(false)
		elapsed := time.Since(began)
		perCall = float64(memNow()-before) / n
		fps = float64(frames.Load()) / elapsed.Seconds()
		for _, c := range clients {
			c.Close()
		}
		for h.Active() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		slices.Sort(latencies)
		if len(latencies) > 0 {
			p50 = latencies[len(latencies)/2]
			p99 = latencies[len(latencies)*99/100]
		}
		slices.Sort(rtts)
		if len(rtts) > 0 {
			rtt50, rtt99 = rtts[len(rtts)/2], rtts[len(rtts)*99/100]
		}
		mu.Unlock()
	}
	b.ReportMetric(fps, "frames/s")
	b.ReportMetric(float64(rtt50)/1e6, "rtt-p50-ms")
	b.ReportMetric(float64(rtt99)/1e6, "rtt-p99-ms")
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	b.ReportMetric(perCall/1024, "KiB/call")
	b.ReportMetric((perCall-bare)/1024, "KiB/call-over-bare-ws")
	b.ReportMetric(n, "calls")
}

// baseline is the same per-call memory with the same fake clients talking to a bare websocket server
// that only reads: what the benchmark's own clients and a minimal connection cost, to subtract.
func baseline(b *testing.B, n int, tone []byte) float64 {
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	var open atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		open.Add(1)
		defer open.Add(-1)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	before := memNow()
	clients := make([]*mediatest.Client, n)
	for i := range clients {
		clients[i] = mediatest.Dial(b, srv.URL, media.Twilio, map[string]string{"t": goodToken}, mediatest.Loop(tone), mediatest.Discard())
	}
	for open.Load() < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	per := float64(memNow()-before) / float64(n)
	for _, c := range clients {
		c.Close()
	}
	return per
}

// memNow is the live heap and goroutine stacks after a collection.
func memNow() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}
