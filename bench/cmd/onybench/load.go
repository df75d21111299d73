package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient keeps enough idle connections that a closed or open loop reuses them instead of
// opening one per request.
func newHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Timeout: timeout, Jar: jar}
}

// payloadText is about 1.5 KB of a shell session: with the title, summary and labels a create body of
// roughly 2 KB, the size the pgbench script's handoff row stands for.
var payloadText = strings.Repeat("$ kubectl -n web rollout restart deploy/web && kubectl -n web rollout status deploy/web --timeout=120s\n", 15)

// createBody is the JSON one agent posts.
func createBody(i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"action":  "deploy.web",
		"title":   fmt.Sprintf("Restart web (%d)", i),
		"summary": "Roll the web deployment to pick up the new config map.",
		"payload": map[string]string{"kind": "command", "content": payloadText},
		"labels":  map[string]string{"env": "staging", "team": "web"},
	})
	return b
}

// api is one base URL with one credential (a device token, or a person's session cookie in hc's jar).
type api struct {
	base  string
	token string
	hc    *http.Client
}

// created is a 201 from POST /v1/handoffs.
type created struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// errStatus is an answer other than the one expected.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (a *api) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &errStatus{code: resp.StatusCode, body: string(data[:min(len(data), 300)])}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (a *api) create(ctx context.Context, i int) (created, error) {
	var c created
	err := a.do(ctx, http.MethodPost, "/v1/handoffs", createBody(i), http.StatusCreated, &c)
	return c, err
}

func (a *api) login(ctx context.Context, email, password string) error {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return a.do(ctx, http.MethodPost, "/v1/auth/login", b, http.StatusOK, nil)
}

// decide denies: approving may need a TOTP step-up, denying never does.
func (a *api) decide(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, "/v1/handoffs/"+id+"/decide", []byte(`{"option":"deny","comment":"bench"}`), http.StatusOK, nil)
}

// wait long-polls once and returns the handoff's status.
func (a *api) wait(ctx context.Context, id string, timeout time.Duration) (string, error) {
	var h struct {
		Status string `json:"status"`
	}
	err := a.do(ctx, http.MethodGet, fmt.Sprintf("/v1/handoffs/%s/wait?timeout=%ds", id, int(timeout.Seconds())), nil, http.StatusOK, &h)
	return h.Status, err
}

// loadResult is what a loop saw: latencies of the successful requests, failures, and the window.
type loadResult struct {
	lat      []time.Duration
	ids      []created
	starts   map[string]time.Time // handoff id → when its create request started
	errors   int
	timeouts int
	elapsed  time.Duration
	firstErr error
}

func (r *loadResult) p(q float64) float64 { return percentile(ms(r.lat), q) }

// collector gathers results from many goroutines.
type collector struct {
	mu sync.Mutex
	r  loadResult
}

func (c *collector) add(start time.Time, cr created, err error) {
	d := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.r.lat = append(c.r.lat, d)
		c.r.ids = append(c.r.ids, cr)
		if c.r.starts != nil {
			c.r.starts[cr.ID] = start
		}
		return
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		c.r.timeouts++
	default:
		c.r.errors++
	}
	if c.r.firstErr == nil {
		c.r.firstErr = err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closedLoop runs conc agents, each creating handoffs back to back, for d.
func closedLoop(ctx context.Context, a *api, conc int, d time.Duration) loadResult {
	var c collector
	var seq atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				cr, err := a.create(ctx, int(seq.Add(1)))
				c.add(t0, cr, err)
			}
		})
	}
	wg.Wait()
	c.r.elapsed = time.Since(start)
	return c.r
}

// openLoop starts creates at a fixed rate for d, each in its own goroutine, whatever the answers:
// a slow server does not slow the arrivals (no coordinated omission). A create is timed from its
// scheduled start; one still unanswered after timeout counts as a timeout.
func openLoop(ctx context.Context, a *api, perSec float64, d time.Duration, timeout time.Duration, keepStarts bool) loadResult {
	var c collector
	if keepStarts {
		c.r.starts = make(map[string]time.Time)
	}
	n := int(perSec * d.Seconds())
	interval := time.Duration(float64(time.Second) / perSec)
	start := time.Now()
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		// A server far behind would otherwise collect tens of thousands of requests in flight: past
		// maxInFlight a create is not sent and counts as a timeout, as it would have become one.
		if inFlight.Load() >= maxInFlight {
			c.add(at, created{}, errNotSent)
			continue
		}
		inFlight.Add(1)
		wg.Go(func() {
			defer inFlight.Add(-1)
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cr, err := a.create(rctx, i)
			c.add(at, cr, err)
		})
	}
	wg.Wait()
	c.r.elapsed = time.Since(start)
	return c.r
}

// maxInFlight bounds an open loop's unanswered creates.
const maxInFlight = 2000

var errNotSent = fmt.Errorf("not sent: %d creates already in flight: %w", maxInFlight, context.DeadlineExceeded)

// burst creates n handoffs with conc agents as fast as they go (used to fill a database). No create
// starts after limit, so a slow server makes a smaller fill, not an unbounded scenario.
func burst(ctx context.Context, a *api, n, conc int, limit time.Duration) loadResult {
	var c collector
	var next atomic.Int64
	start := time.Now()
	deadline := start.Add(limit)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1))
				if i > n {
					return
				}
				t0 := time.Now()
				cr, err := a.create(ctx, i)
				if err != nil && !errors.Is(err, context.Canceled) {
					// One retry: a fill should not come up short for one transient failure.
					cr, err = a.create(ctx, i)
				}
				c.add(t0, cr, err)
			}
		})
	}
	wg.Wait()
	c.r.elapsed = time.Since(start)
	return c.r
}

// delivery is one webhook post the sink received.
type delivery struct {
	handoff string
	step    int
	at      time.Time
}

// sink is the local receiver of the webhook bridge. It timestamps each post on arrival; it does not
// verify signatures (the end-to-end tests do), so it costs the server as little as a real receiver.
type sink struct {
	srv  *http.Server
	URL  string
	mu   sync.Mutex
	got  []delivery
	bad  int
	kick chan struct{}
}

func newSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{URL: "http://" + l.Addr().String() + "/hook", kick: make(chan struct{}, 1)}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var m struct {
			Type    string `json:"type"`
			Step    int    `json:"step"`
			Handoff struct {
				ID string `json:"id"`
			} `json:"handoff"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			s.mu.Lock()
			s.bad++
			s.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if m.Type == "handoff.escalated" {
			s.mu.Lock()
			s.got = append(s.got, delivery{handoff: m.Handoff.ID, step: m.Step, at: at})
			s.mu.Unlock()
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *sink) close() { _ = s.srv.Close() }

// reset forgets what arrived so far.
func (s *sink) reset() {
	s.mu.Lock()
	s.got = nil
	s.mu.Unlock()
}

// step returns the first arrival of each handoff's given step.
func (s *sink) step(step int) map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time)
	for _, d := range s.got {
		if d.step != step {
			continue
		}
		if t, ok := out[d.handoff]; !ok || d.at.Before(t) {
			out[d.handoff] = d.at
		}
	}
	return out
}

// waitStep waits until step has arrived for n handoffs or limit passes, and returns the arrivals.
func (s *sink) waitStep(ctx context.Context, step, n int, limit time.Duration) map[string]time.Time {
	deadline := time.Now().Add(limit)
	for {
		got := s.step(step)
		if len(got) >= n || time.Now().After(deadline) || ctx.Err() != nil {
			return got
		}
		select {
		case <-s.kick:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitEscalated polls the handoff's escalation until some notification of it is recorded, for at most
// limit.
func (a *api) waitEscalated(ctx context.Context, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var e struct {
			Sends []json.RawMessage `json:"sends"`
		}
		err := a.do(ctx, http.MethodGet, "/v1/handoffs/"+id+"/escalation", nil, http.StatusOK, &e)
		if err == nil && len(e.Sends) > 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("handoff %s not escalated within %s (last error: %v)", id, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
