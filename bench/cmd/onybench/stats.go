package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 ≤ q ≤ 1) of xs by the nearest-rank method: the smallest sample
// with at least q·n samples at or below it. It is always one of the samples, so p99 of 200 samples is
// the second-worst one, never an interpolation. NaN for no samples.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// ms converts durations to milliseconds, the unit every latency figure is reported in.
func ms(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// spread is the minimum, median and maximum of one figure's runs. The median of an even count is the
// lower middle value, so that it is always a measured run.
func spread(runs []float64) (lo, med, hi float64) {
	if len(runs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(runs)
	slices.Sort(s)
	return s[0], s[(len(s)-1)/2], s[len(s)-1]
}

// rate is n events over d, per second; 0 when d is not positive.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
