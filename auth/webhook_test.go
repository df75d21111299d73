package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func webhookHeader(id, ts, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set("webhook-id", id)
	}
	if ts != "" {
		h.Set("webhook-timestamp", ts)
	}
	if sig != "" {
		h.Set("webhook-signature", sig)
	}
	return h
}

// TestWebhookPublishedVector uses the example from the Standard Webhooks / Svix documentation:
// secret "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" (the part after "whsec_" is the base64 key).
func TestWebhookPublishedVector(t *testing.T) {
	t.Parallel()
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const (
		id   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		sec  = 1614265330
		want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(sec, 0)
	if got := SignWebhook(key, id, ts, body); got != want {
		t.Fatalf("SignWebhook = %q, want %q", got, want)
	}
	if err := VerifyWebhook(key, webhookHeader(id, strconv.Itoa(sec), want), body, ts.Add(time.Minute), DefaultWebhookTolerance); err != nil {
		t.Fatalf("VerifyWebhook(published vector) = %v", err)
	}
}

func TestWebhookIndependentHMAC(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	ts := time.Unix(1700000000, 999_000_000) // sub-second part must be dropped
	m := hmac.New(sha256.New, key)
	m.Write([]byte("msg_1.1700000000.hello"))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := SignWebhook(key, "msg_1", ts, []byte("hello")); got != want {
		t.Fatalf("SignWebhook = %q, want %q", got, want)
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	rand.Read(key)
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	const id = "msg_2Lh7example"
	ts := time.Unix(1750000000, 0)
	tsStr := strconv.FormatInt(ts.Unix(), 10)
	body := []byte(`{"event":"handoff.ready","id":"h_1"}`)
	sig := SignWebhook(key, id, ts, body)
	sigBytes := sig[len("v1,"):]
	tol := 5 * time.Minute

	tests := []struct {
		name    string
		key     []byte
		h       http.Header
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"valid", key, webhookHeader(id, tsStr, sig), body, ts, nil},
		{"valid at +tolerance", key, webhookHeader(id, tsStr, sig), body, ts.Add(tol), nil},
		{"valid at -tolerance", key, webhookHeader(id, tsStr, sig), body, ts.Add(-tol), nil},
		{"too old", key, webhookHeader(id, tsStr, sig), body, ts.Add(tol + time.Second), ErrWebhookTimestamp},
		{"too new", key, webhookHeader(id, tsStr, sig), body, ts.Add(-tol - time.Second), ErrWebhookTimestamp},
		{"far future timestamp", key, webhookHeader(id, "9223372036854775807", sig), body, ts, ErrWebhookTimestamp},
		{"timestamp overflow", key, webhookHeader(id, "99999999999999999999", sig), body, ts, ErrWebhookTimestamp},
		{"tampered body", key, webhookHeader(id, tsStr, sig), []byte(`{"event":"handoff.ready","id":"h_2"}`), ts, ErrWebhookSignature},
		{"empty body", key, webhookHeader(id, tsStr, sig), nil, ts, ErrWebhookSignature},
		{"tampered id", key, webhookHeader(id+"x", tsStr, sig), body, ts, ErrWebhookSignature},
		{"tampered timestamp", key, webhookHeader(id, strconv.FormatInt(ts.Unix()+1, 10), sig), body, ts, ErrWebhookSignature},
		{"wrong key", otherKey, webhookHeader(id, tsStr, sig), body, ts, ErrWebhookSignature},
		{"empty key", []byte{}, webhookHeader(id, tsStr, SignWebhook(nil, id, ts, body)), body, ts, ErrWebhookSignature},
		{"missing id", key, webhookHeader("", tsStr, sig), body, ts, ErrWebhookSignature},
		{"missing timestamp", key, webhookHeader(id, "", sig), body, ts, ErrWebhookTimestamp},
		{"missing signature", key, webhookHeader(id, tsStr, ""), body, ts, ErrWebhookSignature},
		{"timestamp not a number", key, webhookHeader(id, "soon", sig), body, ts, ErrWebhookTimestamp},
		{"timestamp with sign", key, webhookHeader(id, "+"+tsStr, sig), body, ts, ErrWebhookTimestamp},
		{"timestamp in ms", key, webhookHeader(id, tsStr+"000", sig), body, ts, ErrWebhookTimestamp},
		{"several, one valid", key, webhookHeader(id, tsStr, "v1,AAAA v1,bm90IGEgc2ln "+sig+" v1a,xyz"), body, ts, nil},
		{"extra spaces", key, webhookHeader(id, tsStr, "  "+sig+"  "), body, ts, nil},
		{"unknown version ignored", key, webhookHeader(id, tsStr, "v2,"+sigBytes), body, ts, ErrWebhookSignature},
		{"unknown version beside valid", key, webhookHeader(id, tsStr, "v2,xyz "+sig), body, ts, nil},
		{"no version", key, webhookHeader(id, tsStr, sigBytes), body, ts, ErrWebhookSignature},
		{"truncated signature", key, webhookHeader(id, tsStr, sig[:len(sig)-4]), body, ts, ErrWebhookSignature},
		{"invalid base64", key, webhookHeader(id, tsStr, "v1,!!!!"), body, ts, ErrWebhookSignature},
		{"comma separated", key, webhookHeader(id, tsStr, "v1,AAAA,"+sig), body, ts, ErrWebhookSignature},
		{"duplicate id", key, func() http.Header { h := webhookHeader(id, tsStr, sig); h.Add("webhook-id", "other"); return h }(), body, ts, ErrWebhookSignature},
		{"duplicate timestamp", key, func() http.Header { h := webhookHeader(id, tsStr, sig); h.Add("webhook-timestamp", tsStr); return h }(), body, ts, ErrWebhookTimestamp},
		{"signature in second header", key, func() http.Header {
			h := webhookHeader(id, tsStr, "v1,AAAA")
			h.Add("webhook-signature", sig)
			return h
		}(), body, ts, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyWebhook(tc.key, tc.h, tc.body, tc.now, tol)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("VerifyWebhook = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
