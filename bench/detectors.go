package bench

import (
	"slices"
	"strings"

	"github.com/ony-ai/ony/redact"
	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/report"
)

// Ony is the product's default redactor.
func Ony() Detector {
	r, key := redact.Default(), []byte("ony-bench")
	return Detector{Name: "Ony (redact.Default)", Redact: func(doc string) (string, []Span) {
		out, fs := r.Redact(key, doc)
		spans := make([]Span, len(fs))
		for i, f := range fs {
			spans[i] = Span{f.Start, f.End}
		}
		return out, spans
	}}
}

// GitleaksDetector builds gitleaks' default detector (its built-in config, as
// detect.NewDetectorDefaultConfig gives it) with the given decode depth: the library leaves
// it 0, the gitleaks CLI defaults to --max-decode-depth=5. gitleaks' logging is silenced.
func GitleaksDetector(decodeDepth int) (*detect.Detector, error) {
	zerolog.SetGlobalLevel(zerolog.Disabled)
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		return nil, err
	}
	d.MaxDecodeDepth = decodeDepth
	return d, nil
}

// Gitleaks adapts a gitleaks detector. gitleaks reports findings, not redacted text, so its
// redaction is ours and generous: every occurrence of each finding's Secret is replaced, and
// so is the finding's located span (which, for a secret found by decoding, is the encoded
// text in the input).
func Gitleaks(name string, d *detect.Detector) Detector {
	return Detector{Name: name, Redact: func(doc string) (string, []Span) {
		fs := d.DetectString(doc)
		spans := GitleaksSpans(doc, fs)
		cover := slices.Clone(spans)
		for _, f := range fs {
			if f.Secret == "" {
				continue
			}
			cover = append(cover, allIndex(doc, f.Secret)...)
		}
		return replaceSpans(doc, cover, "[REDACTED]"), spans
	}}
}

// GitleaksSpans turns findings into byte spans of doc: the secret (the capture group gitleaks
// reports as Secret) within the match, or the whole match when the secret is not in it (a
// secret found by decoding). gitleaks gives the match as 0-based StartLine/EndLine and
// columns counted from the byte index of the previous newline (0 on the first line), so the
// match is [nl(StartLine)+StartColumn-1, nl(EndLine)+EndColumn).
func GitleaksSpans(doc string, fs []report.Finding) []Span {
	var nl []int
	for i := 0; i < len(doc); i++ {
		if doc[i] == '\n' {
			nl = append(nl, i)
		}
	}
	prev := func(line int) int {
		if line <= 0 || len(nl) == 0 {
			return 0
		}
		if line > len(nl) {
			line = len(nl)
		}
		return nl[line-1]
	}
	spans := make([]Span, 0, len(fs))
	for _, f := range fs {
		start := clamp(prev(f.StartLine)+f.StartColumn-1, len(doc))
		end := clamp(prev(f.EndLine)+f.EndColumn, len(doc))
		if end < start {
			end = start
		}
		// The match text has newlines trimmed off both ends while the index was only moved at
		// the end, so look for it near the computed place.
		if f.Match != "" && doc[start:end] != f.Match {
			lo, hi := clamp(start-2, len(doc)), clamp(end+2, len(doc))
			if i := strings.Index(doc[lo:hi], f.Match); i >= 0 {
				start, end = lo+i, lo+i+len(f.Match)
			}
		}
		if f.Secret != "" {
			if i := strings.Index(doc[start:end], f.Secret); i >= 0 {
				start, end = start+i, start+i+len(f.Secret)
			}
		}
		spans = append(spans, Span{start, end})
	}
	return spans
}

func clamp(i, n int) int { return max(0, min(i, n)) }

// replaceSpans replaces each maximal run of bytes covered by spans with marker.
func replaceSpans(s string, spans []Span, marker string) string {
	spans = slices.DeleteFunc(spans, func(sp Span) bool { return sp.End <= sp.Start })
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b Span) int { return a.Start - b.Start })
	var b strings.Builder
	at := 0
	for i := 0; i < len(spans); {
		start, end := spans[i].Start, spans[i].End
		for i++; i < len(spans) && spans[i].Start <= end; i++ {
			end = max(end, spans[i].End)
		}
		if start < at {
			start = at
		}
		b.WriteString(s[at:start])
		b.WriteString(marker)
		at = end
	}
	b.WriteString(s[at:])
	return b.String()
}
