// Package testredis connects tests to the real Redis named by ONY_TEST_REDIS_URL.
// Without Redis, tests skip locally but fail in CI (CI=true), so CI can never go green by skipping.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is used when ONY_TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the test Redis URL after a successful PING. If Redis cannot be reached it fails the test
// when CI=true and skips it otherwise.
func URL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("ONY_TEST_REDIS_URL")
	if raw == "" {
		raw = DefaultURL
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // url.Error would print the password
		}
		t.Fatalf("testredis: ONY_TEST_REDIS_URL is not a valid Redis URL: %v", err)
	}
	opt.DialTimeout = 2 * time.Second
	opt.MaxRetries = -1
	client := redis.NewClient(opt)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		where := redact(raw)
		if os.Getenv("CI") == "true" {
			t.Fatalf("testredis: Redis at %s is unreachable (%v); CI=true requires a running Redis (set ONY_TEST_REDIS_URL)", where, err)
		}
		t.Skipf("testredis: skipping, Redis at %s is unreachable (%v); start redis-server or set ONY_TEST_REDIS_URL", where, err)
	}
	return raw
}

// Prefix returns a fresh key prefix so parallel tests and packages sharing one Redis never collide.
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testredis: random prefix: %v", err)
	}
	return "onytest:" + hex.EncodeToString(b) + ":"
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
