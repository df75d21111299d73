package mediatest_test

import (
	"math"
	"testing"
	"time"

	"github.com/ony-ai/ony/voice/media/mediatest"
)

func TestULaw(t *testing.T) {
	t.Parallel()
	// G.711 reference points.
	for _, tt := range []struct {
		in   int16
		want byte
	}{{0, 0xFF}, {32767, 0x80}, {-32768, 0x00}, {-1, 0x7F}, {1000, 0xCE}, {-1000, 0x4E}} {
		if got := mediatest.EncodeULaw(tt.in); got != tt.want {
			t.Errorf("EncodeULaw(%d) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
	// Round trip within the segment's quantisation step (≤ 1/16 of the magnitude, plus the bias).
	for s := -32768; s <= 32767; s += 7 {
		back := int(mediatest.DecodeULaw(mediatest.EncodeULaw(int16(s))))
		if s > 32635 || s < -32635 {
			continue
		}
		if d := math.Abs(float64(back - s)); d > math.Abs(float64(s))/16+8 {
			t.Fatalf("%d → %d: off by %v", s, back, d)
		}
	}
	tone := mediatest.Tone(440, 20*time.Millisecond)
	if len(tone) != 160 {
		t.Fatalf("20 ms tone is %d bytes", len(tone))
	}
	var peak int16
	for _, u := range tone {
		peak = max(peak, mediatest.DecodeULaw(u))
	}
	if peak < 15000 || peak > 17000 {
		t.Errorf("tone peak %d, want about 16000", peak)
	}
	for _, u := range mediatest.Silence(time.Second) {
		if u != 0xFF {
			t.Fatal("silence is not 0xFF")
		}
	}
}
