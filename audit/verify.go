package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// Report is what verification found.
type Report struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"`
	// CheckpointSize is the size the latest checkpoint commits to (0 when none).
	CheckpointSize int64 `json:"checkpoint_size"`
	// BadIndex is the first leaf index at which the log was found wrong, or -1.
	BadIndex int64  `json:"bad_index"`
	Problem  string `json:"problem,omitempty"`
	// OlderSize and Consistency report VerifyExport's check against an older checkpoint, when it was
	// given one: that checkpoint's size, and "ok", "failed" or "not checked" (the export itself did
	// not verify, or the older checkpoint did not open).
	OlderSize   int64  `json:"older_size,omitempty"`
	Consistency string `json:"consistency,omitempty"`
	// Queued is how many committed records were still waiting for the sequencer (VerifyOrg only; they
	// count for the cross-check with the handoffs, not in Size).
	Queued int64 `json:"queued,omitempty"`
	// Elapsed is how long Verify or VerifyOrg took, sequencing what was queued included: the
	// verification's own time, without the process start or connecting that a command adds.
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
}

// Consistency results.
const (
	ConsistencyOK         = "ok"
	ConsistencyFailed     = "failed"
	ConsistencyNotChecked = "not checked"
)

// OK reports whether nothing was wrong.
func (r Report) OK() bool { return r.Problem == "" }

func (r *Report) fail(index int64, format string, args ...any) Report {
	if r.Size == 0 && index > 0 {
		r.Size = index // the leaves before the first bad one were good
	}
	r.BadIndex, r.Problem = index, fmt.Sprintf(format, args...)
	return *r
}

// memHashes serves tlog from hashes recomputed in memory.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("audit: hash %d not computed", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// tree recomputes every stored hash from leaves, as an append would have.
type tree struct{ hashes memHashes }

func (t *tree) add(n int64, data []byte) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashes(n, data, t.hashes)
	if err != nil {
		return nil, err
	}
	t.hashes = append(t.hashes, hs...)
	return hs, nil
}

func (t *tree) root(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t.hashes) }

// Verify recomputes orgID's whole tree from its leaves and checks every stored hash, the head and
// every stored checkpoint (signature, size, root). The report names the first bad leaf index. It checks
// the log against itself only; VerifyOrg also checks it against the organization's records.
func (l *Log) Verify(ctx context.Context, s store.Store, orgID string) (Report, error) {
	return l.verify(ctx, s, orgID, nil)
}

// VerifyOrg does what Verify does, then checks the log against what it records: the organization
// exists (or the log is the instance's), every handoff has its handoff.created leaf and every final one
// the leaf of how it ended, and no leaf names a handoff that does not exist or ended otherwise. A tail
// cut back to an older checkpoint passes Verify; it fails here, naming the handoff whose leaf is gone.
func (l *Log) VerifyOrg(ctx context.Context, s store.Store, orgID string) (Report, error) {
	return l.verify(ctx, s, orgID, &records{})
}

// maxVerifyPage is how many leaves verification reads per query on a large log. Pages are fetched
// one ahead of the hashing, and each page's leaf hashes are computed on every core.
const maxVerifyPage = 8192

// verifyPageFor is the page for a log of size leaves: at most an eighth of it, a power of two from
// 1,024 to maxVerifyPage leaves. Four page buffers are in use at once and a fresh process faults each
// in on its first use, so on a small log pages of 8,192 leaves would fault in about as much memory as
// the log holds; a large log reads fewer, bigger pages (docs/benchmarks.md, sixteenth session).
func verifyPageFor(size int64) int {
	n := maxVerifyPage
	for n > 1024 && int64(n)*8 > size {
		n /= 2
	}
	return n
}

func (l *Log) verify(ctx context.Context, s store.Store, orgID string, x *records) (Report, error) {
	t0 := time.Now()
	rep, err := l.verifyTimed(ctx, s, orgID, x)
	rep.Elapsed = time.Since(t0)
	return rep, err
}

func (l *Log) verifyTimed(ctx context.Context, s store.Store, orgID string, x *records) (Report, error) {
	rep := Report{Origin: l.Origin(orgID), BadIndex: -1}
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return rep, err
	}
	var head store.AuditHead
	var cps []store.AuditCheckpoint
	var f frontier
	roots := map[int64]tlog.Hash{} // the recomputed root at every checkpoint's size
	// One snapshot keeps the view consistent while appends continue: the head, the leaves, the queue
	// and the handoffs read are those of one moment.
	err := s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
		var err error
		if head, err = tx.AuditHead(ctx); errors.Is(err, store.ErrNotFound) {
			// Every organization's log starts with org.created: a missing log was deleted — unless
			// its first records are still queued (a log sequenced since the call above).
			if q, qerr := tx.AuditQueued(ctx, 0, 1); qerr != nil || len(q) == 0 {
				rep.fail(0, "there is no audit log")
				return errors.Join(errStop, qerr)
			}
			head = store.AuditHead{Root: emptyRoot[:]}
		} else if err != nil {
			return err
		}
		// Every checkpoint ever signed, not only the latest: a history rewritten and re-signed since an
		// older checkpoint is caught by that one.
		for from := int64(0); ; {
			batch, err := tx.AuditCheckpoints(ctx, from, 1000)
			if err != nil {
				return err
			}
			cps = append(cps, batch...)
			if len(batch) < 1000 {
				break
			}
			from = batch[len(batch)-1].Size + 1
		}
		for _, cp := range cps {
			roots[cp.Size] = tlog.Hash{}
		}
		if x != nil {
			if orgID != store.InstanceLogID {
				if _, err := tx.Org(ctx); errors.Is(err, store.ErrNotFound) {
					x.orphan = true
				} else if err != nil {
					return err
				}
			}
			if !x.orphan {
				// The handoffs are read beside the first pages of leaves, which come from transactions of
				// their own; the snapshot's transaction ends with this function, so not before the load.
				x.startLoad(ctx, tx, head.Size)
				defer x.wait()
			}
		}
		if err := verifyLeaves(ctx, s, orgID, tx, head.Size, &rep, &f, roots, x); err != nil {
			return err
		}
		rep.Size = f.size
		if x == nil || x.orphan {
			return nil
		}
		// Records committed with their changes but not yet sequenced: in this snapshot every handoff
		// listed has its records either among the leaves or here.
		for after, next := int64(0), f.size; ; {
			q, err := tx.AuditQueued(ctx, after, 1000)
			if err != nil {
				return err
			}
			for _, r := range q {
				x.leaf(next, r.Data)
				next++
				after = r.ID
			}
			rep.Queued += int64(len(q))
			if len(q) < 1000 {
				return nil
			}
		}
	})
	if errors.Is(err, errStop) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	root := f.root()
	rep.Root = rootB64(root[:])
	if head.Size != rep.Size {
		return rep.fail(min(head.Size, rep.Size), "head says %d leaves, the log has %d", head.Size, rep.Size), nil
	}
	if !bytes.Equal(head.Root, root[:]) {
		return rep.fail(rep.Size, "head root does not match the leaves"), nil
	}
	for _, cp := range cps {
		c, err := OpenCheckpoint(cp.Note, l.keys.Verifiers)
		if err != nil {
			return rep.fail(-1, "checkpoint at size %d: %v", cp.Size, err), nil
		}
		if c.Size != cp.Size {
			return rep.fail(-1, "checkpoint stored at size %d commits to %d", cp.Size, c.Size), nil
		}
		if err := checkCheckpoint(c, l.Origin(orgID), rep.Size, roots); err != nil {
			return rep.fail(min(c.Size, rep.Size), "checkpoint at size %d: %v", c.Size, err), nil
		}
		rep.CheckpointSize = c.Size
	}
	switch {
	case x == nil:
	case x.orphan:
		return rep.fail(-1, "the log's organization is gone but the log was not erased with it"), nil
	default:
		var latest *store.AuditCheckpoint
		if len(cps) > 0 {
			latest = &cps[len(cps)-1]
		}
		read := func(id string) (h store.Handoff, err error) {
			err = s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
				h, err = tx.HandoffByID(ctx, id)
				return err
			})
			return h, err
		}
		if bad, problem := x.check(rep.Size, latest, read); problem != "" {
			return rep.fail(bad, "%s", problem), nil
		}
	}
	return rep, nil
}

// verifyLeaves streams the log through the frontier: it recomputes every stored hash, compares it
// with the stored one, and notes the root at each size in roots. Reading runs ahead of hashing; leaf
// hashes (and, for the cross-check, leaf events) are computed on every core, the interior hashes
// (about one per leaf) in order. The leaves below the head, and their hashes, never change (the log
// is append-only), so those pages are read by several readers at once, each page in a short read
// transaction of its own; whatever lies beyond the head is read in the snapshot. A page read outside
// the snapshot that shows a finding is read again in the snapshot and checked again before the
// finding is reported. On a finding it fills rep and returns errStop.
func verifyLeaves(ctx context.Context, s store.Store, orgID string, tx store.OrgTx, headSize int64, rep *Report, f *frontier,
	roots map[int64]tlog.Hash, x *records) error {
	v := pageChecker{f: f, roots: roots, workers: runtime.GOMAXPROCS(0), events: x != nil && !x.orphan, page: verifyPageFor(headSize)}
	var next int64
	if headSize > 0 {
		src := startParallelFetch(ctx, s, orgID, headSize, verifyReaders, v.page)
		err := v.consume(ctx, tx, src, &next, x, rep)
		src.close()
		if err != nil && !errors.Is(err, errMisread) {
			return err
		}
	}
	if err := x.wait(); err != nil { // the snapshot's transaction is the load's until it is done
		return err
	}
	src := startFetch(ctx, tx, next, v.page)
	defer src.close()
	return v.consume(ctx, tx, src, &next, x, rep)
}

// errMisread is a page read outside the snapshot that verified when read again in it: the rest is
// read in the snapshot.
var errMisread = errors.New("audit: a page read outside the snapshot did not match it")

// verifyReaders is how many pages are read at once below the head.
const verifyReaders = 2

// consume checks src's pages in order from leaf *next, advancing it. When a page read outside the
// snapshot verifies only as read again in it, it closes src and returns errMisread, and the caller
// goes on reading in the snapshot.
func (v *pageChecker) consume(ctx context.Context, tx store.OrgTx, src pageSource, next *int64, x *records, rep *Report) error {
	for {
		pg, ok := src.page()
		if !ok {
			return nil
		}
		if pg.err != nil {
			return pg.err
		}
		p := pg.p
		saved := v.save()
		bad, problem := v.check(p)
		misread := false
		if bad >= 0 && !pg.snapshot {
			// Confirm in the snapshot: the readers stop first.
			src.close()
			v.restore(saved)
			if err := x.wait(); err != nil {
				return err
			}
			if err := readRange(ctx, tx, *next, v.page, p); err != nil {
				return err
			}
			bad, problem = v.check(p)
			misread = bad < 0
		}
		if v.events {
			if err := x.wait(); err != nil {
				return err
			}
			upto := len(p.Index)
			if bad >= 0 {
				upto = bad
			}
			for k := range upto {
				x.event(*next+int64(k), v.ev[k], v.evErr[k])
			}
		}
		if bad >= 0 {
			rep.fail(*next+int64(bad), "%s", problem)
			return errStop
		}
		*next += int64(len(p.Index))
		if misread {
			return errMisread
		}
		src.free(p)
	}
}

type fetched struct {
	p        *store.AuditPage
	err      error
	snapshot bool // read in the verification's snapshot
}

// pageSource hands out pages in leaf order.
type pageSource interface {
	page() (fetched, bool) // false: no more pages
	free(p *store.AuditPage)
	close() // stops the readers and waits for them
}

// readRange reads leaves [from, from+n) and the hash tiles holding the hashes they produced.
func readRange(ctx context.Context, tx store.OrgTx, from int64, n int, p *store.AuditPage) error {
	return tx.AuditReadPage(ctx, from, n, p)
}

// fetch reads pages in the snapshot transaction, one ahead of the checker, until a short page.
type fetch struct {
	pages chan fetched
	frees chan *store.AuditPage
	stop  chan struct{}
	done  chan struct{}
}

func startFetch(ctx context.Context, tx store.OrgTx, next int64, page int) *fetch {
	fe := &fetch{pages: make(chan fetched, 1), frees: make(chan *store.AuditPage, 2), stop: make(chan struct{}), done: make(chan struct{})}
	fe.frees <- new(store.AuditPage)
	fe.frees <- new(store.AuditPage)
	go func() {
		defer close(fe.done)
		defer close(fe.pages)
		for {
			var p *store.AuditPage
			select {
			case p = <-fe.frees:
			case <-fe.stop:
				return
			}
			err := readRange(ctx, tx, next, page, p)
			select {
			case fe.pages <- fetched{p, err, true}:
			case <-fe.stop:
				return
			}
			if err != nil || len(p.Index) < page {
				return
			}
			next += int64(page)
		}
	}()
	return fe
}

func (fe *fetch) page() (fetched, bool) { pg, ok := <-fe.pages; return pg, ok }

func (fe *fetch) free(p *store.AuditPage) { fe.frees <- p }

func (fe *fetch) close() {
	select {
	case <-fe.stop:
	default:
		close(fe.stop)
	}
	<-fe.done
}

// parallelFetch reads the pages of page leaves below limit with n readers, reader j taking pages j,
// j+n, …, each in a read transaction of its own; page k is handed out by reader k mod n, so in order.
type parallelFetch struct {
	readers []*fetch
	k       int
}

func startParallelFetch(ctx context.Context, s store.Store, orgID string, limit int64, n, page int) *parallelFetch {
	pf := &parallelFetch{}
	for j := range n {
		fe := &fetch{pages: make(chan fetched, 1), frees: make(chan *store.AuditPage, 2), stop: make(chan struct{}), done: make(chan struct{})}
		fe.frees <- new(store.AuditPage)
		fe.frees <- new(store.AuditPage)
		pf.readers = append(pf.readers, fe)
		go func() {
			defer close(fe.done)
			defer close(fe.pages)
			for from := int64(j * page); from < limit; from += int64(n * page) {
				var p *store.AuditPage
				select {
				case p = <-fe.frees:
				case <-fe.stop:
					return
				}
				err := s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
					return readRange(ctx, tx, from, int(min(int64(page), limit-from)), p)
				})
				select {
				case fe.pages <- fetched{p: p, err: err}:
				case <-fe.stop:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return pf
}

func (pf *parallelFetch) page() (fetched, bool) {
	pg, ok := <-pf.readers[pf.k%len(pf.readers)].pages
	pf.k++
	return pg, ok
}

func (pf *parallelFetch) free(p *store.AuditPage) {
	// Back to the reader that will hand out the page after next of its own.
	pf.readers[(pf.k-1)%len(pf.readers)].frees <- p
}

func (pf *parallelFetch) close() {
	for _, fe := range pf.readers {
		fe.close()
	}
}

// pageChecker checks pages in order against the frontier.
type pageChecker struct {
	f       *frontier
	roots   map[int64]tlog.Hash
	workers int
	events  bool
	page    int // leaves a page holds

	leafHashes []tlog.Hash
	out        []tlog.Hash
	ev         []leafEvent
	evErr      []error

	// The page's tiles by level: tiles[L][k] is the data of tile first[L]+k of level L (nil: not read).
	tiles [64 / store.AuditTileHeight][][]byte
	first [64 / store.AuditTileHeight]int64
}

// indexTiles lays out page p's tiles by level and index for check.
func (v *pageChecker) indexTiles(p *store.AuditPage) {
	for l := range v.tiles {
		v.tiles[l], v.first[l] = v.tiles[l][:0], -1
	}
	for _, t := range p.Tiles {
		if t.Level < 0 || t.Level >= len(v.tiles) {
			continue
		}
		l := t.Level
		if v.first[l] < 0 {
			v.first[l] = t.Index
		}
		if t.Index < v.first[l]+int64(len(v.tiles[l])) {
			continue // out of order: the first one read stands
		}
		for v.first[l]+int64(len(v.tiles[l])) < t.Index {
			v.tiles[l] = append(v.tiles[l], nil)
		}
		v.tiles[l] = append(v.tiles[l], t.Data)
	}
}

// storedHash is the stored hash of tree level j at position n as page p's tiles hold it, or why not.
func (v *pageChecker) storedHash(j int, n int64) ([]byte, string) {
	l := j / store.AuditTileHeight
	k := n/store.AuditTileWidth - v.first[l]
	if v.first[l] < 0 || k < 0 || k >= int64(len(v.tiles[l])) || v.tiles[l][k] == nil {
		return nil, fmt.Sprintf("stored hash %d is missing", tlog.StoredHashIndex(j, n))
	}
	d := v.tiles[l][k]
	pos := int(n % store.AuditTileWidth)
	if len(d)%tlog.HashSize != 0 {
		return nil, fmt.Sprintf("stored hash tile %d/%d is malformed", l, n/store.AuditTileWidth)
	}
	if len(d) < (pos+1)*tlog.HashSize {
		return nil, fmt.Sprintf("stored hash %d is missing", tlog.StoredHashIndex(j, n))
	}
	return d[pos*tlog.HashSize : (pos+1)*tlog.HashSize], ""
}

func (v *pageChecker) save() frontier { return frontier{size: v.f.size, h: slices.Clone(v.f.h)} }

func (v *pageChecker) restore(f frontier) { *v.f = f }

// check runs page p through the frontier and returns the position of the first leaf that is wrong and
// what is wrong with it, or -1. It leaves the leaves' decoded events in v.ev and v.evErr.
func (v *pageChecker) check(p *store.AuditPage) (int, string) {
	n := len(p.Index)
	v.leafHashes = slices.Grow(v.leafHashes[:0], n)[:n]
	if v.events {
		v.ev, v.evErr = slices.Grow(v.ev[:0], n)[:n], slices.Grow(v.evErr[:0], n)[:n]
	}
	var wg sync.WaitGroup
	chunk := max(1, (n+v.workers-1)/v.workers)
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			var buf []byte
			for k := lo; k < hi; k++ {
				v.leafHashes[k] = leafHash(p.Leaf(k), &buf)
				if v.events {
					v.ev[k], v.evErr[k] = decodeLeafEvent(p.Leaf(k))
				}
			}
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
	v.indexTiles(p)
	for k := 0; k < n; k++ {
		i := v.f.size
		if p.Index[k] < 0 {
			return k, fmt.Sprintf("the bundle holding leaf %d is malformed", i)
		}
		if p.Index[k] != i {
			return k, fmt.Sprintf("leaf %d is missing", i)
		}
		v.out = v.f.add(v.leafHashes[k], v.out[:0])
		// Every stored hash is a tile's or is hashed up from one: checking the tiles' checks them all.
		for j := 0; j < len(v.out); j += store.AuditTileHeight {
			stored, problem := v.storedHash(j, i>>j)
			if problem != "" {
				return k, problem
			}
			if !bytes.Equal(stored, v.out[j][:]) {
				return k, fmt.Sprintf("leaf %d does not match its stored hashes", i)
			}
		}
		if _, ok := v.roots[v.f.size]; ok {
			v.roots[v.f.size] = v.f.root()
		}
	}
	return -1, ""
}

func checkCheckpoint(c Checkpoint, origin string, size int64, roots map[int64]tlog.Hash) error {
	if c.Origin != origin {
		return fmt.Errorf("origin %q, want %q", c.Origin, origin)
	}
	if c.Size > size {
		return fmt.Errorf("commits to %d leaves but the log has %d", c.Size, size)
	}
	root, ok := roots[c.Size]
	if c.Size == 0 {
		root, ok = emptyRoot, true
	}
	if !ok {
		return fmt.Errorf("no root computed at size %d", c.Size)
	}
	if root != c.Root {
		return fmt.Errorf("root at size %d does not match the leaves", c.Size)
	}
	return nil
}

var errStop = errors.New("stop")

// VerifyAll runs VerifyOrg on every log and every organization, so that an organization without a log,
// or a log left behind by its organization outside the erasure path, shows up as a failure rather than
// as silence. Reports are in log-id order.
func (l *Log) VerifyAll(ctx context.Context, s store.Store) ([]Report, error) {
	var logs, orgs []string
	err := s.InSystem(ctx, func(tx store.SystemTx) (err error) {
		if logs, err = tx.AuditLogIDs(ctx); err != nil {
			return err
		}
		orgs, err = tx.OrgIDs(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Report
	for _, id := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(logs), orgs...)))) {
		rep, err := l.VerifyOrg(ctx, s, id)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", id, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

func (t *tree) checkCheckpoint(c Checkpoint, origin string, size int64) error {
	if c.Origin != origin {
		return fmt.Errorf("origin %q, want %q", c.Origin, origin)
	}
	if c.Size > size {
		return fmt.Errorf("commits to %d leaves but the log has %d", c.Size, size)
	}
	root, err := t.root(c.Size)
	if err != nil {
		return err
	}
	if root != c.Root {
		return fmt.Errorf("root at size %d does not match the leaves", c.Size)
	}
	return nil
}
