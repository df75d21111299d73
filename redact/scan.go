package redact

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// detector is one built-in or custom rule.
type detector struct {
	kind     string
	keywords []string // lower case; empty: the detector sees the whole text
	// lines is how many lines after the keyword's line the window also takes in.
	lines int
	// reach bounds how far past its anchor an anchored expression may read.
	reach int
	// skipFailed: hits inside a rejected match are not tried again.
	skipFailed bool
	// prefix, if set, must start the text at the anchor (case-sensitively) before re runs.
	prefix string
	re     *regexp.Regexp
	group  int  // capture group of the secret; 0: the whole match
	edge   edge // what may not touch the span on either side
	// accept, if set, judges a match (absolute submatch offsets) and returns the secret span.
	accept func(s *scan, m []int) (span, bool)
	// check, if set, must accept the secret's text.
	check func(v string) bool
	// anchor, if set, turns a keyword hit into the offset where re (which starts with ^) is
	// tried, or false to skip the hit; re then runs once per distinct offset, up to the end
	// of that line (plus lines). Cheap checks in anchor spare most hits the regexp.
	anchor func(s *scan, h int) (int, bool)
	// run, if set, replaces the regexp with a hand-written scanner given the keyword hits.
	run    func(s *scan, d *detector, hits []int)
	custom bool
	prio   int
}

// edge says which bytes may not sit right before or after a span, so that a token is
// recognised whole and not as the tail of a longer word.
type edge uint8

const (
	edgeNone  edge = iota
	edgeAlnum      // [A-Za-z0-9]
	edgeToken      // [A-Za-z0-9_-]
)

func (e edge) blocks(c byte) bool {
	switch e {
	case edgeAlnum:
		return isAlnum(c)
	case edgeToken:
		return isAlnum(c) || c == '_' || c == '-'
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// keywordIndex finds every detector's keywords in one pass. Keywords are bucketed by their
// first two (lowered) bytes; a one-byte keyword goes into all 256 buckets of its byte.
type keywordIndex struct {
	first  [256]bool
	pairs  [1 << 10]uint64 // bit set of the bucketed byte pairs: 8 KiB, stays in L1
	bucket [1 << 16]uint16 // index+1 into lists
	lists  [][]kwEntry
}

type kwEntry struct {
	kw  string
	det int
}

var lowerTab = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

func newKeywordIndex(dets []*detector) *keywordIndex {
	x := &keywordIndex{}
	add := func(pair int, e kwEntry) {
		if x.bucket[pair] == 0 {
			x.lists = append(x.lists, nil)
			x.bucket[pair] = uint16(len(x.lists))
			x.pairs[pair>>6] |= 1 << (pair & 63)
		}
		l := &x.lists[x.bucket[pair]-1]
		for _, old := range *l {
			if old == e {
				return
			}
		}
		*l = append(*l, e)
	}
	for i, d := range dets {
		for _, k := range d.keywords {
			e := kwEntry{kw: k, det: i}
			x.first[k[0]] = true
			if len(k) == 1 {
				for c := range 256 {
					add(int(k[0])<<8|c, e)
				}
				continue
			}
			add(int(k[0])<<8|int(k[1]), e)
		}
	}
	return x
}

// hits returns, per detector, the sorted offsets where one of its keywords starts.
func (x *keywordIndex) hits(text string, n int) [][]int {
	out := make([][]int, n)
	for i := 0; i < len(text); i++ {
		c0 := lowerTab[text[i]]
		if !x.first[c0] {
			continue
		}
		var c1 byte
		if i+1 < len(text) {
			c1 = lowerTab[text[i+1]]
		}
		pair := int(c0)<<8 | int(c1)
		if x.pairs[pair>>6]&(1<<(pair&63)) == 0 {
			continue
		}
		b := x.bucket[pair]
		for _, e := range x.lists[b-1] {
			if hasPrefixFold(text[i:], e.kw) {
				if l := out[e.det]; len(l) == 0 || l[len(l)-1] != i {
					out[e.det] = append(l, i)
				}
			}
		}
	}
	return out
}

// hasPrefixFold reports whether s starts with the lower-case ASCII word kw, ignoring case.
func hasPrefixFold(s, kw string) bool {
	if len(s) < len(kw) {
		return false
	}
	for i := 0; i < len(kw); i++ {
		if lowerTab[s[i]] != kw[i] {
			return false
		}
	}
	return true
}

// scan is the state of one pass over one text.
type scan struct {
	r       *Redactor
	ctx     context.Context
	text    string
	depth   int
	marks   []span
	cands   []cand
	lowered string // lazily: text with A-Z lowered
	det     *detector

	// stop is the end of the current anchored window (its line, or lines): values end there.
	stop int
	// Memos make repeated "where does this run end" questions linear over a scan.
	identS, identE                             int
	memoNL, memoNL2, memoBare, memoDQ, memoEsc memo
	memoSQ, memoBT, memoLT, memoRun            memo
}

// memo remembers the answer to "first offset ≥ from where stop holds": it stays the answer
// for every later query from an offset up to it, so a pass asking in increasing order walks
// the text once.
type memo struct {
	from, at int
	set      bool
}

func (m *memo) next(t string, p int, stop func(byte) bool) int {
	if m.set && m.from <= p && p <= m.at {
		return m.at
	}
	q := p
	for q < len(t) && !stop(t[q]) {
		q++
	}
	m.from, m.at, m.set = p, q, true
	return q
}

func isNL(c byte) bool     { return c == '\n' }
func isDQorNL(c byte) bool { return c == '"' || c == '\n' }
func isSQorNL(c byte) bool { return c == '\'' || c == '\n' }
func isBTorNL(c byte) bool { return c == '`' || c == '\n' }
func isBareEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '`'
}
func notB64(c byte) bool { return !b64Byte[c] }

// unescapedDQ: a '"' not escaped by an odd run of backslashes, or a newline.
func (s *scan) unescapedDQ(p int) int {
	t := s.text
	for {
		q := s.memoDQ.next(t, p, isDQorNL)
		if q >= len(t) || t[q] == '\n' {
			return q
		}
		k := q
		for k > 0 && t[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q
		}
		p = q + 1
	}
}

// valueAt reads the value that starts at p and ends by stop: \"escaped\" (JSON inside JSON),
// "double", 'single' or `back` quoted (the span is the inside), or bare up to white space or
// a quote. ok is false when there is none (an unclosed quote, nothing at all).
func (s *scan) valueAt(p, stop int) (sp span, bare, ok bool) {
	t := s.text
	if p >= stop {
		return span{}, false, false
	}
	switch c := t[p]; {
	case c == '\\' && p+1 < stop && t[p+1] == '"':
		q := s.memoEsc.next(t, p+2, isDQorNL)
		if q < stop && t[q] == '"' && t[q-1] == '\\' && q-1 >= p+2 {
			return span{p + 2, q - 1}, false, true
		}
	case c == '"':
		if q := s.unescapedDQ(p + 1); q < stop && t[q] == '"' {
			return span{p + 1, q}, false, true
		}
	case c == '\'':
		if q := s.memoSQ.next(t, p+1, isSQorNL); q < stop && t[q] == '\'' {
			return span{p + 1, q}, false, true
		}
	case c == '`':
		if q := s.memoBT.next(t, p+1, isBTorNL); q < stop && t[q] == '`' {
			return span{p + 1, q}, false, true
		}
	default:
		if q := min(s.memoBare.next(t, p, isBareEnd), stop); q > p {
			return span{p, q}, true, true
		}
	}
	return span{}, false, false
}

// ident returns the identifier (letters, digits, '_', '-', '.') around offset h, remembering
// the last one so that many hits in one long run cost one walk.
func (s *scan) ident(h int) (int, int) {
	if s.identS <= h && h < s.identE {
		return s.identS, s.identE
	}
	t := s.text
	is, ie := h, h
	for is > 0 && identByte(t[is-1]) {
		is--
	}
	for ie < len(t) && identByte(t[ie]) {
		ie++
	}
	s.identS, s.identE = is, ie
	return is, ie
}

// classify is classifyName of text[is:ie], cached.
func (s *scan) classify(is, ie int) int {
	return cachedClass(s.text[is:ie])
}

// nameCache remembers classifyName for the names met most: they repeat across payloads
// ("password", "api_key"). It stops growing at maxCachedNames, so odd input cannot fill memory.
var (
	nameCache      sync.Map // string → int
	nameCacheSize  atomic.Int64
	maxCachedNames = int64(8192)
)

func cachedClass(name string) int {
	if c, ok := nameCache.Load(name); ok {
		return c.(int)
	}
	c := classifyName(name)
	if len(name) <= 64 && nameCacheSize.Load() < maxCachedNames {
		if _, loaded := nameCache.LoadOrStore(strings.Clone(name), c); !loaded {
			nameCacheSize.Add(1)
		}
	}
	return c
}

func (s *scan) lower() string {
	if s.lowered == "" && s.text != "" {
		s.lowered = asciiLower(s.text)
	}
	return s.lowered
}

func (s *scan) add(sp span, d *detector) {
	if sp.end > sp.start {
		s.cands = append(s.cands, cand{start: sp.start, end: sp.end, prio: d.prio, kind: d.kind})
	}
}

// maxDepth bounds how many layers of encoding (base64 inside base64…) are opened.
const maxDepth = 2

// scan returns the merged secret spans of text.
func (r *Redactor) scan(ctx context.Context, text string, depth int) ([]cand, error) {
	if r.hook != nil {
		r.hook()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &scan{r: r, ctx: ctx, text: text, depth: depth, marks: markers(text)}
	hits := r.index.hits(text, len(r.dets))
	for i, d := range r.dets {
		h := hits[i]
		if len(d.keywords) > 0 {
			if len(s.marks) > 0 {
				h = outside(h, s.marks)
			}
			if len(h) == 0 {
				continue
			}
		}
		s.det = d
		if d.run != nil {
			d.run(s, d, h)
		} else if d.anchor != nil {
			s.anchored(d, h)
		} else if len(d.keywords) == 0 {
			s.match(d, 0, len(text))
		} else {
			s.windows(h, d.lines, func(ws, we int) { s.match(d, ws, we) })
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	cs := s.cands
	if len(s.marks) > 0 {
		cs = cs[:0]
		for _, c := range s.cands {
			if !overlaps(span{c.start, c.end}, s.marks) {
				cs = append(cs, c)
			}
		}
	}
	return merge(cs), nil
}

// outside drops the hits that fall inside a marker.
func outside(hits []int, marks []span) []int {
	out := hits[:0:0]
	m := 0
	for _, h := range hits {
		for m < len(marks) && marks[m].end <= h {
			m++
		}
		if m < len(marks) && marks[m].start <= h {
			continue
		}
		out = append(out, h)
	}
	return out
}

// overlaps reports whether sp shares a byte with one of marks. Such a match reads redaction
// output (a marker's kind or fingerprint), not a secret: text that was redacted once is left
// as it is, so redacting twice changes nothing.
func overlaps(sp span, marks []span) bool {
	for _, m := range marks {
		if sp.start < m.end && m.start < sp.end {
			return true
		}
	}
	return false
}

// Lines longer than longLine are not scanned whole for each keyword: a window reaches
// backReach bytes before the keyword and fwdReach after it, widened to the nearest delimiter.
const (
	longLine  = 64 << 10
	backReach = 1 << 10
	fwdReach  = 32 << 10
	snapReach = 256
)

// windows calls f once for each stretch of text that holds hits: the line of a hit plus
// extra following lines. Each line is visited once.
func (s *scan) windows(hits []int, extra int, f func(ws, we int)) {
	t := s.text
	done := 0 // text before done has been windowed
	lineS, lineE := -1, -1
	for _, h := range hits {
		if h < done {
			continue
		}
		if h > lineE || lineS < 0 {
			// A new line: it starts after the last newline since the previous line's end.
			base := lineE + 1
			if lineS < 0 {
				base = 0
			}
			lineS = strings.LastIndexByte(t[base:h], '\n') + 1 + base
			lineE = len(t)
			if i := strings.IndexByte(t[h:], '\n'); i >= 0 {
				lineE = h + i
			}
		}
		ws, we := lineS, lineE
		for k := 0; k < extra && we < len(t); k++ {
			if i := strings.IndexByte(t[we+1:], '\n'); i >= 0 {
				we = we + 1 + i
			} else {
				we = len(t)
			}
		}
		if we-ws > longLine {
			ws, we = max(ws, snapBack(t, h-backReach)), min(we, snapFwd(t, h+fwdReach))
		}
		f(ws, we)
		done = we
		if done < len(t) && t[done] == '\n' {
			done++
		}
	}
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '"', '\'', ',', ';', '{', '}', '[', ']', '<', '>':
		return true
	}
	return false
}

func snapBack(t string, i int) int {
	if i <= 0 {
		return 0
	}
	for k := i; k > 0 && i-k < snapReach; k-- {
		if isDelim(t[k-1]) {
			return k
		}
	}
	return i
}

func snapFwd(t string, i int) int {
	if i >= len(t) {
		return len(t)
	}
	for k := i; k < len(t) && k-i < snapReach; k++ {
		if isDelim(t[k]) {
			return k
		}
	}
	return i
}

// anchored tries d's anchored expression at the offsets its anchor picks, each over at most
// d.reach bytes of its line (plus d.lines more lines). Hits inside a secret already taken are
// skipped.
func (s *scan) anchored(d *detector, hits []int) {
	t := s.text
	last, skip := -1, 0
	for _, h := range hits {
		if h < skip {
			continue
		}
		st, ok := d.anchor(s, h)
		if !ok || st == last || st < 0 {
			continue
		}
		// A token glued to the word before it can never pass the edge test: do not read it.
		if st > 0 && d.edge.blocks(t[st-1]) || d.prefix != "" && !strings.HasPrefix(t[st:], d.prefix) {
			continue
		}
		last = st
		end := s.memoNL.next(t, st, isNL)
		if d.lines > 0 && end < len(t) {
			end = s.memoNL2.next(t, end+1, isNL)
		}
		s.stop = min(end, st+fwdReach)
		m := d.re.FindStringSubmatchIndex(t[st:min(s.stop, st+d.reach)])
		if m == nil {
			continue
		}
		if sp, ok := s.accept(d, m, st); ok {
			skip = sp.end
		} else if d.skipFailed {
			skip = st + m[1] // a token's tail is no new token
		}
	}
}

// match runs d's expression over text[ws:we] and records what it accepts.
func (s *scan) match(d *detector, ws, we int) {
	w := s.text[ws:we]
	s.stop = we
	for _, m := range d.re.FindAllStringSubmatchIndex(w, -1) {
		s.accept(d, m, ws)
	}
}

// accept judges one match (offsets relative to base) and records the secret it holds.
func (s *scan) accept(d *detector, m []int, base int) (span, bool) {
	for i := range m {
		if m[i] >= 0 {
			m[i] += base
		}
	}
	var sp span
	if d.accept != nil {
		var ok bool
		if sp, ok = d.accept(s, m); !ok {
			return sp, false
		}
	} else {
		if m[2*d.group] < 0 {
			return sp, false
		}
		sp = span{m[2*d.group], m[2*d.group+1]}
	}
	if sp.end <= sp.start || !s.edgeOK(sp, d.edge) || d.check != nil && !d.check(s.text[sp.start:sp.end]) {
		return sp, false
	}
	s.add(sp, d)
	return sp, true
}

func (s *scan) edgeOK(sp span, e edge) bool {
	if e == edgeNone {
		return true
	}
	if sp.start > 0 && e.blocks(s.text[sp.start-1]) {
		return false
	}
	return sp.end >= len(s.text) || !e.blocks(s.text[sp.end])
}

// asciiLower lowers A-Z only, so offsets in the result match the input.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		b[i] = lowerTab[b[i]]
	}
	return string(b)
}
