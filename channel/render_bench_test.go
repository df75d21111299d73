package channel_test

import (
	"crypto/sha256"
	"testing"

	"github.com/ony-ai/ony/channel"
)

// BenchmarkShortCode derives the 4-digit code an SMS reply quotes from a decision token's hash.
func BenchmarkShortCode(b *testing.B) {
	sum := sha256.Sum256([]byte("ony_dec_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"))
	b.ReportAllocs()
	for b.Loop() {
		_ = channel.ShortCode(sum[:])
	}
}
