package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// ErrWebhookURL means a webhook's target is not a URL a request can be made to.
var ErrWebhookURL = errors.New("bad URL")

// PostWebhook POSTs a JSON body signed the Standard Webhooks way and drains the answer. Its errors
// never carry the target URL, whose path or query may be a credential: a transport error is
// unwrapped from *url.Error, and a refusal reads "status N".
func PostWebhook(ctx context.Context, client *http.Client, target, userAgent string, key []byte, id string, now time.Time, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return ErrWebhookURL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(WebhookIDHeader, id)
	req.Header.Set(WebhookTimestampHeader, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(WebhookSignatureHeader, SignWebhook(key, id, now, body))
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
