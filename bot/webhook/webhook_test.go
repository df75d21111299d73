package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/store"
)

// whSecret is a Standard Webhooks secret's bytes (what config.WebhookSecretBytes returns).
var whSecret = []byte("0123456789abcdef0123456789abcdef")

// whNow is the fake clock of the webhook tests: signatures are checked against it, not the wall clock.
var whNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// bridgeRequest is one post a fake bridge received.
type bridgeRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// fakeBridge records every post and answers with status (200 when 0).
type fakeBridge struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []bridgeRequest
	status int
}

func newFakeBridge(t *testing.T, status int) *fakeBridge {
	t.Helper()
	b := &fakeBridge{status: status}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, bridgeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		b.mu.Unlock()
		if b.status != 0 {
			w.WriteHeader(b.status)
			_, _ = io.WriteString(w, "bridge says no: "+r.URL.String())
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *fakeBridge) requests() []bridgeRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bridgeRequest(nil), b.got...)
}

// The bridge URLs carry a credential in their path and query, as Discord's and Teams' do.
const (
	secretPath  = "/api/webhooks/1234/SECRET-PATH-TOKEN-7f3a"
	secretQuery = "sig=SECRET-QUERY-TOKEN-91bd"
)

func webhookNotification() channel.Notification {
	return channel.Notification{
		Key: "7d0c6c0e-5f0e-4d5b-9d7b-3f0b1c2d3e4f/0.1.webhook.webhook:bridge.0", OrgID: "org-1",
		HandoffID: "7d0c6c0e-5f0e-4d5b-9d7b-3f0b1c2d3e4f", Action: "deploy.web", Risk: "high",
		Gist: "[high] deploy.web: ship it", ConsoleURL: "https://ony.test/console/handoffs/7d0c6c0e-5f0e-4d5b-9d7b-3f0b1c2d3e4f",
		ExpiresAt: whNow.Add(time.Hour), Ladder: "prod", Climb: 0, Step: 1, StepName: "bridges",
		Recipient: channel.Recipient{Name: "webhook:bridge", Address: "bridge", Timezone: time.UTC},
	}
}

// strictMessage decodes a post the way a careful bridge would: unknown fields are an error.
func strictMessage(t *testing.T, body []byte) webhook.Message {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m webhook.Message
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode webhook message: %v: %s", err, body)
	}
	return m
}

// TestWebhookSignsNotifyAndUpdate: every post is a signed Standard Webhooks request whose webhook-id
// is the notification key (the key plus "/final" for the outcome), and carries no payload or title.
func TestWebhookSignsNotifyAndUpdate(t *testing.T) {
	t.Parallel()
	b := newFakeBridge(t, 0)
	w := webhook.New(map[string]string{"bridge": b.srv.URL + secretPath + "?" + secretQuery}, whSecret, b.srv.Client(),
		func() time.Time { return whNow })
	if w.Kind() != webhook.Kind.Name || w.Provider() != "builtin" || webhook.Kind.TakesDecisions || !w.Has("bridge") || w.Has("teams") {
		t.Fatalf("kind/provider = %s/%s, or the kind takes decisions, or the bridges are wrong", w.Kind(), w.Provider())
	}
	n := webhookNotification()
	d, err := w.Notify(context.Background(), n)
	if err != nil {
		t.Fatalf("notify: %v", err)
	}
	if d.Ref != "bridge" || d.State != store.SendSent {
		t.Fatalf("delivery = %+v, want ref bridge, state sent", d)
	}
	err = w.Update(context.Background(), channel.Update{Key: n.Key, OrgID: n.OrgID, HandoffID: n.HandoffID, Ref: d.Ref,
		Recipient: n.Recipient, Status: store.StatusApproved, Text: "Approved by Ana via api, 12:03 UTC"})
	if err != nil {
		t.Fatalf("update: %v", err)
	}

	got := b.requests()
	if len(got) != 2 {
		t.Fatalf("bridge got %d posts, want 2", len(got))
	}
	for i, r := range got {
		wantID := n.Key
		if i == 1 {
			wantID = n.Key + "/final"
		}
		if r.Method != http.MethodPost || r.Path != secretPath || r.Query != secretQuery {
			t.Errorf("post %d: %s %s?%s", i, r.Method, r.Path, r.Query)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("post %d: Content-Type %q", i, ct)
		}
		if id := r.Header.Get(auth.WebhookIDHeader); id != wantID {
			t.Errorf("post %d: webhook-id %q, want %q", i, id, wantID)
		}
		if err := auth.VerifyWebhook(whSecret, r.Header, r.Body, whNow, auth.DefaultWebhookTolerance); err != nil {
			t.Errorf("post %d: signature: %v", i, err)
		}
		// The signature covers the body and the id: change either and it no longer verifies.
		tampered := bytes.Replace(r.Body, []byte(`"status":"`), []byte(`"status":"x`), 1)
		if bytes.Equal(tampered, r.Body) {
			t.Fatalf("post %d: nothing to tamper with: %s", i, r.Body)
		}
		if err := auth.VerifyWebhook(whSecret, r.Header, tampered, whNow, auth.DefaultWebhookTolerance); !errors.Is(err, auth.ErrWebhookSignature) {
			t.Errorf("post %d: a tampered body verified: %v", i, err)
		}
		h := r.Header.Clone()
		h.Set(auth.WebhookIDHeader, wantID+"x")
		if err := auth.VerifyWebhook(whSecret, h, r.Body, whNow, auth.DefaultWebhookTolerance); !errors.Is(err, auth.ErrWebhookSignature) {
			t.Errorf("post %d: another webhook-id verified: %v", i, err)
		}
		if err := auth.VerifyWebhook([]byte("another secret, 24 bytes or more"), r.Header, r.Body, whNow, auth.DefaultWebhookTolerance); err == nil {
			t.Errorf("post %d: verified with another secret", i)
		}
		var raw map[string]any
		if err := json.Unmarshal(r.Body, &raw); err != nil {
			t.Fatal(err)
		}
		hd, _ := raw["handoff"].(map[string]any)
		for _, k := range []string{"title", "summary", "payload", "token", "options"} {
			if _, ok := hd[k]; ok {
				t.Errorf("post %d: the handoff carries %q: %s", i, k, r.Body)
			}
			if _, ok := raw[k]; ok {
				t.Errorf("post %d: the message carries %q: %s", i, k, r.Body)
			}
		}
	}

	m := strictMessage(t, got[0].Body)
	exp := n.ExpiresAt
	want := webhook.Message{Type: "handoff.escalated", Ladder: "prod", Climb: 0, Step: 1,
		Handoff: webhook.Handoff{ID: n.HandoffID, Action: "deploy.web", Risk: "high", Gist: n.Gist, Status: "pending",
			ExpiresAt: &exp, ConsoleURL: n.ConsoleURL}}
	want.Text = m.Text
	if m.Handoff.ExpiresAt == nil || !m.Handoff.ExpiresAt.Equal(exp) {
		t.Errorf("expires_at = %v, want %v", m.Handoff.ExpiresAt, exp)
	}
	m.Handoff.ExpiresAt = &exp
	if !jsonEqual(m, want) {
		t.Errorf("escalated message = %+v\nwant %+v", m, want)
	}
	for _, s := range []string{"high", "deploy.web", n.Gist, n.ConsoleURL} {
		if !strings.Contains(m.Text, s) {
			t.Errorf("text %q lacks %q", m.Text, s)
		}
	}

	f := strictMessage(t, got[1].Body)
	if f.Type != "handoff.finished" || f.Handoff.ID != n.HandoffID || f.Handoff.Status != "approved" || f.Text != "Approved by Ana via api, 12:03 UTC" {
		t.Errorf("finished message = %+v", f)
	}
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// TestWebhookErrorsNameTheBridgeNotTheURL: a bridge URL may be a credential, so no error — bad
// status, refused connection, timeout — quotes it; each names the bridge instead.
func TestWebhookErrorsNameTheBridgeNotTheURL(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })

	cases := []struct {
		name    string
		status  int    // a bridge answering this
		url     string // or this URL
		client  *http.Client
		timeout time.Duration
		want    []string
		is      error
	}{
		{name: "500", status: http.StatusInternalServerError, want: []string{"status 500"}},
		{name: "404", status: http.StatusNotFound, want: []string{"status 404"}},
		{name: "401", status: http.StatusUnauthorized, want: []string{"status 401"}},
		{name: "429", status: http.StatusTooManyRequests, want: []string{"status 429"}},
		{name: "connection refused", url: closedURL},
		{name: "ctx deadline", url: slow.URL, timeout: 200 * time.Millisecond, is: context.DeadlineExceeded},
		{name: "client timeout", url: slow.URL, client: &http.Client{Transport: testhttp.Client.Transport, Timeout: 200 * time.Millisecond}},
		{name: "unparsable URL", url: "http://bad host", want: []string{"bad URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, client := tc.url, tc.client
			if tc.status != 0 {
				b := newFakeBridge(t, tc.status)
				base = b.srv.URL
			}
			if client == nil {
				client = &http.Client{Transport: testhttp.Client.Transport, Timeout: 10 * time.Second}
			}
			target := base + secretPath + "?" + secretQuery
			w := webhook.New(map[string]string{"bridge": target}, whSecret, client, func() time.Time { return whNow })
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			n := webhookNotification()
			_, err := w.Notify(ctx, n)
			if err == nil {
				t.Fatal("notify succeeded")
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("notify took %v: the timeout was not respected", took)
			}
			uerr := w.Update(ctx, channel.Update{Key: n.Key, HandoffID: n.HandoffID, Ref: "bridge", Status: store.StatusDenied, Text: "Denied"})
			if uerr == nil {
				t.Fatal("update succeeded")
			}
			for _, e := range []error{err, uerr} {
				msg := e.Error()
				if !strings.Contains(msg, `"bridge"`) {
					t.Errorf("error %q does not name the bridge", msg)
				}
				for _, leak := range []string{target, secretPath, secretQuery, "SECRET", "webhooks/1234"} {
					if strings.Contains(msg, leak) {
						t.Errorf("error %q quotes the URL (%q)", msg, leak)
					}
				}
				for _, s := range tc.want {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q lacks %q", msg, s)
					}
				}
				if tc.is != nil && !errors.Is(e, tc.is) && !errors.Is(e, context.DeadlineExceeded) {
					t.Errorf("error %v is not %v", e, tc.is)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("notify error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestWebhookUnknownBridge: a name the configuration does not define is an error, and nothing is sent.
func TestWebhookUnknownBridge(t *testing.T) {
	t.Parallel()
	b := newFakeBridge(t, 0)
	w := webhook.New(map[string]string{"bridge": b.srv.URL}, whSecret, b.srv.Client(), nil)
	n := webhookNotification()
	n.Recipient.Address = "teams"
	if _, err := w.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), `"teams"`) || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("notify to an unknown bridge: %v", err)
	}
	if err := w.Update(context.Background(), channel.Update{Key: n.Key, Ref: "teams", Status: store.StatusApproved}); err == nil || !strings.Contains(err.Error(), `"teams"`) {
		t.Fatalf("update to an unknown bridge: %v", err)
	}
	if got := b.requests(); len(got) != 0 {
		t.Fatalf("the configured bridge got %d posts", len(got))
	}
}

// TestWebhookTimestampIsTheClock: webhook-timestamp comes from the channel's clock, and a bridge
// checking it against its own time (five minutes' tolerance) refuses a stale one.
func TestWebhookTimestampIsTheClock(t *testing.T) {
	t.Parallel()
	b := newFakeBridge(t, 0)
	w := webhook.New(map[string]string{"bridge": b.srv.URL}, whSecret, b.srv.Client(), func() time.Time { return whNow })
	if _, err := w.Notify(context.Background(), webhookNotification()); err != nil {
		t.Fatal(err)
	}
	r := b.requests()[0]
	if ts := r.Header.Get(auth.WebhookTimestampHeader); ts != strconv.FormatInt(whNow.Unix(), 10) {
		t.Fatalf("webhook-timestamp = %q, want %d", ts, whNow.Unix())
	}
	if err := auth.VerifyWebhook(whSecret, r.Header, r.Body, whNow.Add(10*time.Minute), auth.DefaultWebhookTolerance); !errors.Is(err, auth.ErrWebhookTimestamp) {
		t.Fatalf("a ten-minute-old post verified: %v", err)
	}
}
