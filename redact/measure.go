package redact

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A labelled corpus is a directory holding documents and manifest.json:
//
//	[
//	  {"file": "shell/deploy.sh",
//	   "secrets": [{"value": "ghp_…", "kind": "github_token"},
//	               {"value": "hunter22"}]},
//	  {"file": "logs/negatives.log", "secrets": []}
//	]
//
// file is relative to the directory. Each secret's value is the exact text planted in the
// file (it may occur several times); kind is optional and, when given, is compared with the
// kind of the finding that covers it. A document with no secrets is a pure negative: every
// finding in it is a false positive. All values must be fake.
type ManifestEntry struct {
	File    string          `json:"file"`
	Secrets []PlantedSecret `json:"secrets"`
}

// PlantedSecret is one labelled secret of a corpus document.
type PlantedSecret struct {
	Value string `json:"value"`
	Kind  string `json:"kind,omitempty"`
}

// Metrics are a redactor's scores on a labelled corpus.
type Metrics struct {
	Documents int
	Bytes     int64
	Planted   int // labelled secrets
	Covered   int // labelled secrets whose every occurrence lies inside findings
	Findings  int
	Hits      int // findings overlapping a labelled secret
	Leaked    int // documents where a labelled value survives redaction
	KindsSeen int // covered secrets that carry a kind label
	KindsOK   int // … whose covering finding has that kind

	LeakRate  float64 // Leaked / Documents
	Recall    float64 // Covered / Planted
	Precision float64 // Hits / Findings
	Elapsed   time.Duration
	MBPerSec  float64 // corpus bytes redacted per second (10^6 bytes), over repeated passes

	// Problems lists each miss, leak, false positive and kind mismatch, for people. Values are
	// shown shortened; findings never carry text.
	Problems []string
}

// Measure runs r over the corpus in corpusDir (see ManifestEntry) and scores it. Timing
// repeats whole passes until at least 200ms have passed, so small corpora measure fairly.
func Measure(r *Redactor, corpusDir string) (Metrics, error) {
	var m Metrics
	raw, err := os.ReadFile(filepath.Join(corpusDir, "manifest.json"))
	if err != nil {
		return m, err
	}
	var entries []ManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return m, fmt.Errorf("manifest.json: %w", err)
	}
	key := []byte("ony-corpus-measure")
	docs := make([]string, len(entries))
	for i, e := range entries {
		b, err := os.ReadFile(filepath.Join(corpusDir, filepath.FromSlash(e.File)))
		if err != nil {
			return m, err
		}
		docs[i] = string(b)
		m.Bytes += int64(len(b))
	}
	m.Documents = len(docs)
	for i, e := range entries {
		doc := docs[i]
		out, fs := r.Redact(key, doc)
		m.Findings += len(fs)
		var planted []span
		for _, s := range e.Secrets {
			if s.Value == "" {
				return m, fmt.Errorf("%s: empty secret value", e.File)
			}
			occ := allIndex(doc, s.Value)
			if len(occ) == 0 {
				return m, fmt.Errorf("%s: planted value %s does not occur in the file", e.File, preview(s.Value))
			}
			m.Planted++
			planted = append(planted, occ...)
			covered := true
			kind := ""
			for _, o := range occ {
				f, ok := covering(fs, o)
				if !ok {
					covered = false
					break
				}
				if kind == "" {
					kind = f.Kind
				}
			}
			if covered {
				m.Covered++
				if s.Kind != "" {
					m.KindsSeen++
					if kind == s.Kind {
						m.KindsOK++
					} else {
						m.Problems = append(m.Problems, fmt.Sprintf("kind  %s: %s is %s, labelled %s", e.File, preview(s.Value), kind, s.Kind))
					}
				}
			} else {
				m.Problems = append(m.Problems, fmt.Sprintf("miss  %s: %s (%s)", e.File, preview(s.Value), s.Kind))
			}
		}
		for _, s := range e.Secrets {
			if strings.Contains(out, s.Value) {
				m.Leaked++
				m.Problems = append(m.Problems, fmt.Sprintf("LEAK  %s: %s survives redaction", e.File, preview(s.Value)))
				break
			}
		}
		for _, f := range fs {
			hit := false
			for _, p := range planted {
				if f.Start < p.end && p.start < f.End {
					hit = true
					break
				}
			}
			if hit {
				m.Hits++
			} else {
				m.Problems = append(m.Problems, fmt.Sprintf("fp    %s: %s at %d: %s", e.File, f.Kind, f.Start, preview(doc[f.Start:f.End])))
			}
		}
	}
	m.LeakRate = ratio(m.Leaked, m.Documents)
	m.Recall = ratio(m.Covered, m.Planted)
	m.Precision = ratio(m.Hits, m.Findings)
	if m.Findings == 0 && m.Planted == 0 {
		m.Precision = 1
	}

	start := time.Now()
	passes := 0
	for time.Since(start) < 200*time.Millisecond {
		for _, d := range docs {
			r.Redact(key, d)
		}
		passes++
	}
	m.Elapsed = time.Since(start)
	m.MBPerSec = float64(m.Bytes) * float64(passes) / m.Elapsed.Seconds() / 1e6
	return m, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func allIndex(s, sub string) []span {
	var out []span
	for at := 0; ; {
		i := strings.Index(s[at:], sub)
		if i < 0 {
			return out
		}
		out = append(out, span{at + i, at + i + len(sub)})
		at += i + 1
	}
}

// covering returns the finding that holds all of sp.
func covering(fs []Finding, sp span) (Finding, bool) {
	for _, f := range fs {
		if f.Start <= sp.start && sp.end <= f.End {
			return f, true
		}
	}
	return Finding{}, false
}

// preview shortens a corpus value for a problem report.
func preview(v string) string {
	v = strings.ReplaceAll(v, "\n", `\n`)
	if len(v) > 24 {
		return fmt.Sprintf("%q…(%d bytes)", v[:16], len(v))
	}
	return fmt.Sprintf("%q", v)
}
