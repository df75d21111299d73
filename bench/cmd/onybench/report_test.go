package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	xs := make([]float64, 200)
	for i := range xs {
		xs[i] = float64(200 - i) // 200..1, unsorted on purpose
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 100}, {0.99, 198}, {1, 200}, {0, 1}, {0.001, 1}} {
		if got := percentile(xs, c.q); got != c.want {
			t.Errorf("percentile(1..200, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if xs[0] != 200 {
		t.Error("percentile sorted its input in place")
	}
	if got := percentile([]float64{7}, 0.99); got != 7 {
		t.Errorf("one sample: p99 = %v, want 7", got)
	}
	if !math.IsNaN(percentile(nil, 0.5)) {
		t.Error("no samples: want NaN")
	}
}

func TestSpreadAndRate(t *testing.T) {
	lo, med, hi := spread([]float64{3, 1, 2})
	if lo != 1 || med != 2 || hi != 3 {
		t.Errorf("spread(3,1,2) = %v %v %v, want 1 2 3", lo, med, hi)
	}
	if _, med, _ := spread([]float64{4, 1, 3, 2}); med != 2 {
		t.Errorf("median of four = %v, want the lower middle 2", med)
	}
	if r := rate(500, 2*time.Second); r != 250 {
		t.Errorf("rate = %v, want 250", r)
	}
	if r := rate(5, 0); r != 0 {
		t.Errorf("rate over 0 s = %v, want 0", r)
	}
	if got := ms([]time.Duration{1500 * time.Microsecond}); got[0] != 1.5 {
		t.Errorf("ms = %v, want 1.5", got)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{1234567, "/s", "1,234,567/s"},
		{999.6, "/s", "1,000/s"},
		{12.34, "ms", "12.3 ms"},
		{1.234, "ms", "1.23 ms"},
		{0.5, "×", "0.50×"},
		{42, "", "42"},
		{-1234, "", "-1,234"},
		{math.NaN(), "ms", "n/a"},
	} {
		if got := format(c.v, c.unit); got != c.want {
			t.Errorf("format(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestRowVerdicts(t *testing.T) {
	for _, c := range []struct {
		f    Figure
		want string
	}{
		{Figure{Name: "p99", Dialect: "sqlite", Unit: "ms", Runs: []float64{30, 10, 20}, Target: lt(25)},
			"| p99 | sqlite | 10.0 ms / 20.0 ms / 30.0 ms | < 25.0 ms | met | 0.80 |"},
		{Figure{Name: "p99", Dialect: "sqlite", Unit: "ms", Runs: []float64{30, 26, 20}, Target: lt(25)},
			"| p99 | sqlite | 20.0 ms / 26.0 ms / 30.0 ms | < 25.0 ms | **missed** | 1.04 |"},
		{Figure{Name: "creates", Dialect: "postgres", Unit: "/s", Runs: []float64{1500}, Target: ge(1500)},
			"| creates | postgres | 1,500/s | ≥ 1,500/s | met | 1.00 |"},
		{Figure{Name: "rss", Unit: "MiB", Runs: []float64{40}, Target: le(40)},
			"| rss | — | 40.0 MiB | ≤ 40.0 MiB | met | 1.00 |"},
		{Figure{Name: "count", Unit: "", Runs: []float64{3}},
			"| count | — | 3 | — | — | — |"},
		{Figure{Name: "gone", Unit: "s", Runs: []float64{math.NaN()}, Target: lt(2)},
			"| gone | — | n/a | < 2.00 s | no data | — |"},
	} {
		if got := c.f.row(); got != c.want {
			t.Errorf("row:\n got %s\nwant %s", got, c.want)
		}
	}
}

func TestRenderFiguresGroupsByScenario(t *testing.T) {
	rec := &recorder{}
	for run := range 3 {
		rec.add("1. A", "x", "postgres", "/s", nil, float64(run))
		rec.add("2. B", "y", "", "ms", lt(5), 1)
		rec.add("1. A", "x", "sqlite", "/s", nil, 1) // after 2. B, as a second dialect's figures come
	}
	figs := rec.figures()
	if len(figs) != 3 || len(figs[0].Runs) != 3 {
		t.Fatalf("recorder kept %d figures (%+v), want 3 with 3 runs each", len(figs), figs)
	}
	out := renderFigures(figs)
	if strings.Count(out, "#### ") != 2 || strings.Count(out, "| figure |") != 2 {
		t.Fatalf("want two tables:\n%s", out)
	}
	if a, b := strings.Index(out, "#### 1. A"), strings.Index(out, "#### 2. B"); a < 0 || b < a {
		t.Errorf("scenarios out of order:\n%s", out)
	}
	if i, j := strings.Index(out, "| x | sqlite"), strings.Index(out, "#### 2. B"); i < 0 || i > j {
		t.Errorf("sqlite's row of 1. A is not in 1. A's table:\n%s", out)
	}
	if !strings.Contains(out, "| x | postgres | 0.00/s / 1.00/s / 2.00/s |") {
		t.Errorf("postgres row missing:\n%s", out)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# Benchmarks\n\n## Redaction\n\nkeep me\n"
	once, err := replaceSection(doc, "first\n")
	if err != nil {
		t.Fatal(err)
	}
	want := doc + "\n" + beginMarker + "\nfirst\n" + endMarker + "\n"
	if once != want {
		t.Fatalf("appending:\n got %q\nwant %q", once, want)
	}
	withTail := once + "\n## After\n\nalso keep me\n"
	twice, err := replaceSection(withTail, "second")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(twice, "keep me\n") || !strings.Contains(twice, "## After\n\nalso keep me\n") {
		t.Errorf("text outside the markers changed:\n%s", twice)
	}
	if strings.Contains(twice, "first") || !strings.Contains(twice, beginMarker+"\nsecond\n"+endMarker) {
		t.Errorf("section not replaced:\n%s", twice)
	}
	if again, _ := replaceSection(twice, "second"); again != twice {
		t.Error("replacing with the same section is not idempotent")
	}
	for _, bad := range []string{
		doc + endMarker + "\n" + beginMarker + "\n",
		doc + beginMarker + "\n" + beginMarker + "\n" + endMarker + "\n",
		doc + beginMarker + "\n",
	} {
		if _, err := replaceSection(bad, "x"); err == nil {
			t.Errorf("want an error for markers %q", bad[len(doc):])
		}
	}
}

func TestParsers(t *testing.T) {
	out := "ok    ony  12 leaves  checkpoint 12  root abc\nok    ony/org/1234  40001 leaves  checkpoint 40001  root def\n"
	sum := 0
	for _, m := range reLeaves.FindAllStringSubmatch(out, -1) {
		var n int
		for _, c := range m[1] {
			n = n*10 + int(c-'0')
		}
		sum += n
	}
	if sum != 40013 {
		t.Errorf("leaves = %d, want 40013", sum)
	}
	// The format of today's ony, with each log's verification time, and of an older one without it.
	now := "ok    ony  12 leaves  checkpoint 12  root abc  verified in 1.5ms (8000 leaves/s)\n" +
		"ok    ony/org/1234  40001 leaves  checkpoint 40001  root def  verified in 38.5ms (1039000 leaves/s)\n"
	if leaves, d := verifyOutput(now); leaves != 40013 || d != 40*time.Millisecond {
		t.Errorf("verifyOutput = %d leaves in %s, want 40013 in 40ms", leaves, d)
	}
	if leaves, d := verifyOutput(out); leaves != 40013 || d != 0 {
		t.Errorf("verifyOutput of an older ony = %d leaves in %s, want 40013 in 0s", leaves, d)
	}
	pg := "pgbench (15.10)\nnumber of transactions actually processed: 100\nlatency average = 1.2 ms\ntps = 3889.123456 (without initial connection time)\n"
	if m := reTPS.FindStringSubmatch(pg); m == nil || m[1] != "3889.123456" {
		t.Errorf("tps = %v", m)
	}
	if m := reTxDone.FindStringSubmatch(pg); m == nil || m[1] != "100" {
		t.Errorf("transactions = %v", m)
	}
	// A command name may hold spaces and parentheses; fields count from its last ')'.
	st, err := parseProcStat("4242 (postgres: a) b) S 17 4242 4242 0 -1 4194560 900 0 0 0 250 31 7 5 20 0 1 0 100 0\n")
	if err != nil || st.comm != "postgres: a) b" || st.ppid != 17 || st.self != 2810*time.Millisecond || st.kids != 120*time.Millisecond {
		t.Errorf("parseProcStat = %+v, %v", st, err)
	}
	if _, err := parseProcStat("4242 (ony) S 1 2"); err == nil {
		t.Error("parseProcStat accepted a short line")
	}
}
