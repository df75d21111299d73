package audit

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// BenchmarkVerifyCheck is the part of verification that needs no database: recompute every leaf hash
// and interior hash of a 200,000-leaf log from pages already in memory, and compare each with the
// stored one. Its leaves/s is what Verify could reach if reading the pages cost nothing, so set against
// BenchmarkVerify (the same work with the reads) it shows how much of verification is reading rows.
func BenchmarkVerifyCheck(b *testing.B) {
	const n, leafSize = 200_000, 300 // about the size of a handoff.decided leaf
	pages := memPages(n, leafSize)
	for b.Loop() {
		var f frontier
		v := pageChecker{f: &f, roots: map[int64]tlog.Hash{n: {}}, workers: runtime.GOMAXPROCS(0)}
		for _, p := range pages {
			if bad, problem := v.check(p); bad >= 0 {
				b.Fatalf("leaf %d: %s", bad, problem)
			}
		}
		if f.size != n {
			b.Fatalf("checked %d leaves, want %d", f.size, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// memPages lays out an n-leaf log as verification reads it: pages of verifyPageFor(n) leaves with
// the stored hashes they produce.
func memPages(n, leafSize int) []*store.AuditPage {
	page := verifyPageFor(int64(n))
	var f frontier
	var pages []*store.AuditPage
	var out []tlog.Hash
	var w tileWriter
	for i := range n {
		if i%page == 0 {
			pages = append(pages, &store.AuditPage{})
		}
		p := pages[len(pages)-1]
		leaf := fmt.Appendf(nil, "%0*d", leafSize, i)
		p.Index, p.Data = append(p.Index, int64(i)), append(p.Data, leaf...)
		p.Ends = append(p.Ends, len(p.Data))
		out = f.add(tlog.RecordHash(leaf), out[:0])
		w.add(int64(i), out)
	}
	// Each page gets the tiles its leaves' hashes are in, as AuditReadPage reads them.
	for k, p := range pages {
		from, to := int64(k*page), int64(k*page+len(p.Index))
		for _, t := range w.tiles {
			shift := store.AuditTileHeight * t.Level
			lo, hi := (from>>shift)/store.AuditTileWidth, ((to>>shift)-1)/store.AuditTileWidth
			if to>>shift > 0 && t.Index >= lo && t.Index <= hi {
				p.Tiles = append(p.Tiles, t)
			}
		}
	}
	return pages
}
