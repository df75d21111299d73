package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names from the Standard Webhooks specification (https://www.standardwebhooks.com).
const (
	WebhookIDHeader        = "webhook-id"
	WebhookTimestampHeader = "webhook-timestamp"
	WebhookSignatureHeader = "webhook-signature"
)

// DefaultWebhookTolerance is the replay window the Standard Webhooks reference libraries use.
const DefaultWebhookTolerance = 5 * time.Minute

var (
	ErrWebhookSignature = errors.New("auth: webhook signature missing or invalid")
	ErrWebhookTimestamp = errors.New("auth: webhook timestamp missing, malformed or outside tolerance")
)

// SignWebhook returns the webhook-signature header value "v1,<base64 HMAC-SHA256(key, id.ts.body)>",
// where ts is in unix seconds.
func SignWebhook(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(webhookMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

func webhookMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks a Standard Webhooks request: webhook-timestamp must be within tolerance of
// now, and at least one "v1,<sig>" in the space-separated webhook-signature header must be valid
// (other versions are ignored). It returns ErrWebhookTimestamp or ErrWebhookSignature.
func VerifyWebhook(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	// An empty key would make every signature forgeable; refuse rather than verify against it.
	if len(key) == 0 {
		return ErrWebhookSignature
	}
	// Repeated id or timestamp headers are ambiguous about what was signed, so treat them as absent.
	ids, tss := h.Values(WebhookIDHeader), h.Values(WebhookTimestampHeader)
	if len(tss) != 1 {
		return ErrWebhookTimestamp
	}
	ts := tss[0]
	sec, ok := parseDecimal(ts, 1<<62)
	if !ok {
		return ErrWebhookTimestamp
	}
	// Compare in seconds: time.Duration overflows for timestamps ~292 years away.
	if d := now.Unix() - int64(sec); d > int64(tolerance/time.Second) || -d > int64(tolerance/time.Second) {
		return ErrWebhookTimestamp
	}
	if len(ids) != 1 || ids[0] == "" {
		return ErrWebhookSignature
	}
	want := webhookMAC(key, ids[0], ts, body)
	valid := false
	for _, v := range h.Values(WebhookSignatureHeader) {
		for _, sig := range strings.Fields(v) {
			version, enc, ok := strings.Cut(sig, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				continue
			}
			// No early exit: which of several signatures matched is not worth leaking.
			if hmac.Equal(got, want) {
				valid = true
			}
		}
	}
	if !valid {
		return ErrWebhookSignature
	}
	return nil
}
