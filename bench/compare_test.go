package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/redact"
	glregexp "github.com/zricethezav/gitleaks/v8/regexp"
)

const corpusDir = "../redact/testdata/corpus"

// typicalPayload is the redact package's benchmark payload (BenchmarkRedact/4KB_typical): a shell
// session with a diff and some log lines, holding two secrets among look-alikes.
var typicalPayload = func() string {
	b, err := os.ReadFile("../redact/testdata/typical-payload.txt")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// payload4K is typicalPayload repeated and cut to 4096 bytes, as BenchmarkRedact/4KB_typical.
var payload4K = strings.Repeat(typicalPayload, 4096/len(typicalPayload)+1)[:4096]

// gitleaksRegexp names the regexp engine gitleaks is built with: Go's regexp by default,
// go-re2 (RE2 compiled to WebAssembly) under -tags gore2regex, as gitleaks' release binaries are.
func gitleaksRegexp() string {
	if glregexp.Version == "stdlib" {
		return "Go stdlib"
	}
	return "go-re2 (-tags gore2regex)"
}

// contestants returns Ony and gitleaks as a library gives it (decode depth 0) and as its CLI
// runs by default (decode depth 5).
func contestants(t testing.TB) []Detector {
	g0, err := GitleaksDetector(0)
	if err != nil {
		t.Fatal(err)
	}
	g5, err := GitleaksDetector(5)
	if err != nil {
		t.Fatal(err)
	}
	return []Detector{
		Ony(),
		Gitleaks(fmt.Sprintf("gitleaks 8.30.1, decode depth 0 (library default), regexp: %s", gitleaksRegexp()), g0),
		Gitleaks(fmt.Sprintf("gitleaks 8.30.1, decode depth 5 (CLI default), regexp: %s", gitleaksRegexp()), g5),
	}
}

// TestCompare scores Ony and gitleaks' default detector on the same corpus in the same run and
// prints a Markdown table. It holds Ony to the bar: no leaks, recall and precision ≥ 0.95, a
// leak rate no worse than gitleaks' and a higher throughput.
func TestCompare(t *testing.T) {
	docs, bytes, err := LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	dets := contestants(t)

	scores := make([]Score, len(dets))
	cats := make([]map[string]*Score, len(dets))
	for i, d := range dets {
		scores[i], cats[i] = Evaluate(d, docs)
	}
	checkAgainstMeasure(t, scores[0])

	mbps, meanMBps := Throughput(dets, docs, time.Second)
	p50, p90 := PerDoc(dets, payload4K, time.Second)

	planted := scores[0].Planted
	var b strings.Builder
	fmt.Fprintf(&b, "\ncorpus: %d documents, %d bytes, %d planted secrets; %s, %s/%s, GOMAXPROCS=%d, one goroutine\n\n",
		len(docs), bytes, planted, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	b.WriteString("| detector | leak rate | recall | precision | MB/s | 4 KB p50 |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for i, d := range dets {
		s := scores[i]
		fmt.Fprintf(&b, "| %s | %.3f (%d/%d docs) | %.3f (%d/%d) | %.3f (%d/%d) | %.1f | %s |\n",
			d.Name, s.LeakRate, s.Leaked, s.Documents, s.Recall, s.Covered, s.Planted,
			s.Precision, s.Hits, s.Findings, mbps[i], fmtDur(p50[i]))
	}
	b.WriteString("\nMB/s as total bytes over total time (sensitive to stalls of a shared machine): ")
	for i, d := range dets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.1f", d.Name, meanMBps[i])
	}
	b.WriteString("\n4 KB p90: ")
	for i, d := range dets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", d.Name, fmtDur(p90[i]))
	}
	b.WriteString("\n\nrecall by corpus directory (covered/planted; leaked documents/documents):\n\n| directory |")
	for _, d := range dets {
		fmt.Fprintf(&b, " %s |", d.Name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(dets)) + "\n")
	var names []string
	for c := range cats[0] {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		fmt.Fprintf(&b, "| %s (%d docs) |", c, cats[0][c].Documents)
		for i := range dets {
			s := cats[i][c]
			fmt.Fprintf(&b, " %d/%d; %d/%d |", s.Covered, s.Planted, s.Leaked, s.Documents)
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
	if path := os.Getenv("BENCH_TABLE_OUT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}

	for i, d := range dets {
		t.Logf("%s: %d problems", d.Name, len(scores[i].Problems))
		for _, p := range scores[i].Problems {
			t.Logf("  %s", p)
		}
	}

	ony := scores[0]
	if ony.LeakRate != 0 {
		t.Errorf("Ony leaks planted secrets in %d documents: %v", ony.Leaked, ony.LeakedDocs)
	}
	if ony.Recall < 0.95 {
		t.Errorf("Ony recall %.3f, want ≥ 0.95", ony.Recall)
	}
	if ony.Precision < 0.95 {
		t.Errorf("Ony precision %.3f, want ≥ 0.95", ony.Precision)
	}
	for i := 1; i < len(dets); i++ {
		if ony.LeakRate > scores[i].LeakRate {
			t.Errorf("BAR MISSED: Ony leak rate %.3f > %s %.3f", ony.LeakRate, dets[i].Name, scores[i].LeakRate)
		}
		if !(mbps[0] > mbps[i]) {
			t.Errorf("BAR MISSED: Ony %.1f MB/s is not faster than %s %.1f MB/s", mbps[0], dets[i].Name, mbps[i])
		}
	}
}

// checkAgainstMeasure checks the shared scoring here agrees with redact.Measure on Ony.
func checkAgainstMeasure(t *testing.T, s Score) {
	t.Helper()
	m, err := redact.Measure(redact.Default(), corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	got := [6]int{s.Documents, s.Planted, s.Covered, s.Findings, s.Hits, s.Leaked}
	want := [6]int{m.Documents, m.Planted, m.Covered, m.Findings, m.Hits, m.Leaked}
	if got != want {
		t.Errorf("bench scoring disagrees with redact.Measure on Ony: documents, planted, covered, findings, hits, leaked = %v, Measure says %v", got, want)
	}
}

// TestGitleaksSpans checks the spans derived from gitleaks findings: a finding whose Secret
// occurs in the document must map onto exactly that text.
func TestGitleaksSpans(t *testing.T) {
	docs, _, err := LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, depth := range []int{0, 5} {
		d, err := GitleaksDetector(depth)
		if err != nil {
			t.Fatal(err)
		}
		exact, decoded := 0, 0
		for _, doc := range docs {
			fs := d.DetectString(doc.Text)
			for i, sp := range GitleaksSpans(doc.Text, fs) {
				f := fs[i]
				switch {
				case doc.Text[sp.Start:sp.End] == f.Secret:
					exact++
				case !strings.Contains(doc.Text, f.Secret):
					decoded++ // found by decoding: the span is the encoded text
				default:
					t.Errorf("depth %d: %s: %s finding at line %d col %d–%d maps to %q, want its secret %q",
						depth, doc.File, f.RuleID, f.StartLine, f.StartColumn, f.EndColumn, doc.Text[sp.Start:sp.End], f.Secret)
				}
			}
		}
		t.Logf("decode depth %d: %d findings located exactly, %d found by decoding", depth, exact, decoded)
	}
}

func corpusDocs(b *testing.B) ([]Doc, int64) {
	docs, n, err := LoadCorpus(corpusDir)
	if err != nil {
		b.Fatal(err)
	}
	return docs, n
}

func benchCorpus(b *testing.B, d Detector) {
	docs, n := corpusDocs(b)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, doc := range docs {
			d.Redact(doc.Text)
		}
	}
}

// BenchmarkOny redacts every corpus document once per iteration.
func BenchmarkOny(b *testing.B) { benchCorpus(b, Ony()) }

// BenchmarkGitleaks runs gitleaks' default detector (plus our redaction of its findings) over
// every corpus document once per iteration; detect_only leaves the redaction out.
func BenchmarkGitleaks(b *testing.B) {
	for _, depth := range []int{0, 5} {
		d, err := GitleaksDetector(depth)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("decode%d", depth), func(b *testing.B) { benchCorpus(b, Gitleaks("gitleaks", d)) })
		b.Run(fmt.Sprintf("decode%d_detect_only", depth), func(b *testing.B) {
			benchCorpus(b, Detector{Redact: func(doc string) (string, []Span) { d.DetectString(doc); return doc, nil }})
		})
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}
