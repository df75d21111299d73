package redact

import (
	"os"
	"path/filepath"
	"testing"
)

const corpusDir = "testdata/corpus"

// TestCorpus scores the default redactor on the labelled corpus: no document may leak a
// planted secret, and span recall and precision must each reach 0.95.
func TestCorpus(t *testing.T) {
	m, err := Measure(Default(), corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Problems {
		t.Log(p)
	}
	t.Logf("corpus: %d documents, %d bytes, %d planted secrets, %d findings", m.Documents, m.Bytes, m.Planted, m.Findings)
	t.Logf("leak rate %.3f (%d documents), recall %.3f (%d/%d), precision %.3f (%d/%d), kinds %d/%d, %.1f MB/s",
		m.LeakRate, m.Leaked, m.Recall, m.Covered, m.Planted, m.Precision, m.Hits, m.Findings, m.KindsOK, m.KindsSeen, m.MBPerSec)
	if m.Documents < 60 {
		t.Errorf("corpus has %d documents, want at least 60", m.Documents)
	}
	if m.LeakRate > 0 {
		t.Errorf("leak rate %.3f, want 0", m.LeakRate)
	}
	if m.Recall < 0.95 {
		t.Errorf("recall %.3f, want ≥ 0.95", m.Recall)
	}
	if m.Precision < 0.95 {
		t.Errorf("precision %.3f, want ≥ 0.95", m.Precision)
	}
}

// BenchmarkCorpus redacts every corpus document once per iteration.
func BenchmarkCorpus(b *testing.B) {
	var docs []string
	var n int64
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "manifest.json" || d.Name() == "README.md" {
			return err
		}
		data, err := os.ReadFile(p)
		docs = append(docs, string(data))
		n += int64(len(data))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	r, key := Default(), []byte("bench")
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range docs {
			r.Redact(key, d)
		}
	}
}
