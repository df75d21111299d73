package auth

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkDeviceToken is the CPU side of authenticating every agent request: the token's shape, then
// the hash the database is asked for.
func BenchmarkDeviceToken(b *testing.B) {
	tok, err := NewToken("ony_dev_")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseToken(tok.Plain, "ony_dev_"); err != nil {
			b.Fatal(err)
		}
		_ = HashToken(tok.Plain)
	}
}

// BenchmarkVerifyWebhook checks one signed 1 KiB delivery (callbacks, the webhook bridge).
func BenchmarkVerifyWebhook(b *testing.B) {
	key := make([]byte, 32)
	body := make([]byte, 1024)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", "1800000000")
	h.Set("webhook-signature", SignWebhook(key, "msg_1", now, body))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyWebhook(key, h, body, now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
