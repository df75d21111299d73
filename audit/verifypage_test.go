package audit

import "testing"

func TestVerifyPageFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		size int64
		want int
	}{
		{0, 1024}, {8191, 1024}, {16_383, 1024}, {16_384, 2048}, {40_003, 4096}, {65_535, 4096},
		{65_536, maxVerifyPage}, {10_000_000, maxVerifyPage},
	} {
		if got := verifyPageFor(c.size); got != c.want {
			t.Errorf("verifyPageFor(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}
