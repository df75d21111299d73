// Package bench compares Ony's redactor with other secret detectors on the labelled corpus of
// package redact. It is its own Go module so that the detectors it compares against stay out
// of the product's dependencies.
//
// The scoring below is written once and used for every detector. Its definitions are those of
// redact.Measure (the test checks that both agree on Ony):
//
//   - leak rate: documents in which some planted value still occurs in the redacted output,
//     over all documents;
//   - recall: planted secrets all of whose occurrences lie inside one reported span, over all
//     planted secrets;
//   - precision: reported spans overlapping some occurrence of a planted secret, over all
//     reported spans (1 when nothing is planted and nothing reported).
package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ony-ai/ony/redact"
)

// Span is a reported secret: the byte range [Start, End) of the input.
type Span struct{ Start, End int }

// Detector is one contestant. Redact returns the input with the secrets it found replaced,
// and the spans it reported.
type Detector struct {
	Name   string
	Redact func(doc string) (string, []Span)
}

// Doc is one corpus document with its labels.
type Doc struct {
	File    string
	Text    string
	Secrets []redact.PlantedSecret
}

// Category is the document's top-level directory in the corpus ("logs", "prose", …).
func (d Doc) Category() string {
	if i := strings.IndexByte(d.File, '/'); i >= 0 {
		return d.File[:i]
	}
	return "."
}

// LoadCorpus reads dir/manifest.json (format: redact.ManifestEntry) and the documents it
// lists. It checks every planted value occurs in its document, as redact.Measure does.
func LoadCorpus(dir string) ([]Doc, int64, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, 0, err
	}
	var entries []redact.ManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, 0, fmt.Errorf("manifest.json: %w", err)
	}
	var docs []Doc
	var n int64
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.File)))
		if err != nil {
			return nil, 0, err
		}
		for _, s := range e.Secrets {
			if s.Value == "" || !strings.Contains(string(b), s.Value) {
				return nil, 0, fmt.Errorf("%s: planted value %s does not occur in the file", e.File, Preview(s.Value))
			}
		}
		docs = append(docs, Doc{File: e.File, Text: string(b), Secrets: e.Secrets})
		n += int64(len(b))
	}
	return docs, n, nil
}

// Score is a detector's quality on a corpus.
type Score struct {
	Documents, Planted, Covered, Findings, Hits, Leaked int
	LeakRate, Recall, Precision                         float64
	// LeakedDocs names the documents that leak; Problems lists every miss, leak and false
	// positive for people (values shortened).
	LeakedDocs []string
	Problems   []string
}

// ScoreOne adds one document's outcome to s; Finish computes the rates.
func (s *Score) ScoreOne(doc Doc, out string, spans []Span) {
	s.Documents++
	s.Findings += len(spans)
	var planted []Span
	for _, p := range doc.Secrets {
		occ := allIndex(doc.Text, p.Value)
		s.Planted++
		planted = append(planted, occ...)
		covered := true
		for _, o := range occ {
			if !covering(spans, o) {
				covered = false
				break
			}
		}
		if covered {
			s.Covered++
		} else {
			s.Problems = append(s.Problems, fmt.Sprintf("miss  %s: %s (%s)", doc.File, Preview(p.Value), p.Kind))
		}
	}
	for _, p := range doc.Secrets {
		if strings.Contains(out, p.Value) {
			s.Leaked++
			s.LeakedDocs = append(s.LeakedDocs, doc.File)
			s.Problems = append(s.Problems, fmt.Sprintf("LEAK  %s: %s survives redaction", doc.File, Preview(p.Value)))
			break
		}
	}
	for _, f := range spans {
		hit := false
		for _, p := range planted {
			if f.Start < p.End && p.Start < f.End {
				hit = true
				break
			}
		}
		if hit {
			s.Hits++
		} else {
			s.Problems = append(s.Problems, fmt.Sprintf("fp    %s: at %d: %s", doc.File, f.Start, Preview(doc.Text[f.Start:f.End])))
		}
	}
}

// Finish computes the rates from the counts.
func (s *Score) Finish() {
	s.LeakRate = ratio(s.Leaked, s.Documents)
	s.Recall = ratio(s.Covered, s.Planted)
	s.Precision = ratio(s.Hits, s.Findings)
	if s.Findings == 0 && s.Planted == 0 {
		s.Precision = 1
	}
}

// Evaluate runs d over docs and scores it overall and per category.
func Evaluate(d Detector, docs []Doc) (Score, map[string]*Score) {
	var all Score
	byCat := map[string]*Score{}
	for _, doc := range docs {
		out, spans := d.Redact(doc.Text)
		all.ScoreOne(doc, out, spans)
		c := byCat[doc.Category()]
		if c == nil {
			c = &Score{}
			byCat[doc.Category()] = c
		}
		c.ScoreOne(doc, out, spans)
	}
	all.Finish()
	for _, c := range byCat {
		c.Finish()
	}
	return all, byCat
}

// Throughput runs whole-corpus passes of every detector until each has run for at least min,
// in rounds: each round gives every unfinished detector a time slice of about min/20 (at least
// one whole pass), in an order reversed every other round (ABBA…), so the detectors share the
// machine's state over the same stretch of time. A detector's rate is the median over its
// slices of bytes redacted per second (MB/s, 10^6 bytes), which a stall of the machine during
// one slice cannot move much; mean is the plain total bytes over total time, for comparison.
func Throughput(dets []Detector, docs []Doc, min time.Duration) (median, mean []float64) {
	var bytes int64
	for _, d := range docs {
		bytes += int64(len(d.Text))
	}
	for _, d := range dets { // warm up
		for _, doc := range docs {
			d.Redact(doc.Text)
		}
	}
	turns := interleave(len(dets), min, func(i int) {
		for _, doc := range docs {
			dets[i].Redact(doc.Text)
		}
	})
	for i := range dets {
		var rates []float64
		var total time.Duration
		calls := 0
		for _, sl := range turns[i] {
			rates = append(rates, float64(bytes)*float64(sl.calls)/sl.spent.Seconds()/1e6)
			total += sl.spent
			calls += sl.calls
		}
		slices.Sort(rates)
		median = append(median, rates[len(rates)/2])
		mean = append(mean, float64(bytes)*float64(calls)/total.Seconds()/1e6)
	}
	return median, mean
}

// PerDoc times single calls on payload, interleaved like Throughput, until each detector has
// min accumulated time. It returns each detector's median and 90th percentile call time.
func PerDoc(dets []Detector, payload string, min time.Duration) (p50, p90 []time.Duration) {
	for _, d := range dets { // warm up
		d.Redact(payload)
	}
	times := make([][]time.Duration, len(dets))
	interleave(len(dets), min, func(i int) {
		start := time.Now()
		dets[i].Redact(payload)
		times[i] = append(times[i], time.Since(start))
	})
	for i := range dets {
		slices.Sort(times[i])
		p50 = append(p50, times[i][len(times[i])/2])
		p90 = append(p90, times[i][len(times[i])*9/10])
	}
	return p50, p90
}

// slice is one contestant's turn in interleave: calls calls of run in spent time.
type slice struct {
	spent time.Duration
	calls int
}

// interleave calls run(i) for each of n contestants until the time spent in its calls reaches
// min, in rounds of slices of about min/20 (at least one call) per unfinished contestant, the
// order reversed every other round. It returns each contestant's slices.
func interleave(n int, min time.Duration, run func(i int)) [][]slice {
	out := make([][]slice, n)
	elapsed := make([]time.Duration, n)
	for round := 0; ; round++ {
		busy := false
		for k := range n {
			i := k
			if round%2 == 1 {
				i = n - 1 - k
			}
			if elapsed[i] >= min {
				continue
			}
			busy = true
			var sl slice
			for sl.spent < min/20 && elapsed[i]+sl.spent < min {
				start := time.Now()
				run(i)
				sl.spent += time.Since(start)
				sl.calls++
			}
			elapsed[i] += sl.spent
			out[i] = append(out[i], sl)
		}
		if !busy {
			return out
		}
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func allIndex(s, sub string) []Span {
	var out []Span
	for at := 0; ; {
		i := strings.Index(s[at:], sub)
		if i < 0 {
			return out
		}
		out = append(out, Span{at + i, at + i + len(sub)})
		at += i + 1
	}
}

// covering reports whether one of spans holds all of sp.
func covering(spans []Span, sp Span) bool {
	for _, f := range spans {
		if f.Start <= sp.Start && sp.End <= f.End {
			return true
		}
	}
	return false
}

// Preview shortens a corpus value for a problem report.
func Preview(v string) string {
	v = strings.ReplaceAll(v, "\n", `\n`)
	if len(v) > 24 {
		return fmt.Sprintf("%q…(%d bytes)", v[:16], len(v))
	}
	return fmt.Sprintf("%q", v)
}
