package risk

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Engine applies a validated action table and rule table. It is immutable
// after New, so one Engine may serve concurrent Derive calls.
type Engine struct {
	base  []ActionBase
	rules []compiledRule
	// floors and disabled come from a Policy (see Policy.Engine); an engine
	// built by New has neither.
	floors   []floor
	disabled []string
}

type compiledRule struct {
	id       string
	reason   Reason
	level    Level
	actions  []string
	kinds    []string
	keywords []string
	re       *regexp.Regexp
	require  []*regexp.Regexp
	unless   []*regexp.Regexp
	// needs is a literal, ASCII-lowered, that every match of re contains (empty when the pattern
	// has none): a piece without it cannot match, which a substring search tells for far less than
	// running the pattern.
	needs    string
	within   byte // 0: the whole payload is one piece
	fold     bool
	wordOnly bool
	keys     []string
	values   []string
	label    bool
	// origin and defaultLevel only feed Explain: where the rule came from
	// and its level before a policy changed it.
	origin       string
	defaultLevel Level
}

// defaultEngine is built once: compiling the table on every Default call
// would be wasted work, and the Engine never changes afterwards.
var defaultEngine = sync.OnceValue(func() *Engine {
	e, err := New(DefaultRules())
	if err != nil {
		panic("risk: built-in rule table is invalid: " + err.Error())
	}
	for i := range e.rules {
		e.rules[i].origin = OriginBuiltin
	}
	return e
})

// Default returns the engine for the built-in tables.
func Default() *Engine { return defaultEngine() }

// New validates rules and returns an engine using them with the built-in
// action table. The error lists every bad rule, not just the first.
func New(rules []Rule) (*Engine, error) { return NewWithBase(DefaultBase(), rules) }

// NewWithBase is New with a custom action table.
func NewWithBase(base []ActionBase, rules []Rule) (*Engine, error) {
	var errs []error
	e := &Engine{}
	for i, b := range base {
		var problems []string
		action := normalize(b.Action)
		if action == "" {
			problems = append(problems, "empty action")
		}
		if !b.Level.Valid() {
			problems = append(problems, fmt.Sprintf("invalid level %d", int(b.Level)))
		}
		if b.Reason != "" && !KnownReason(b.Reason) {
			problems = append(problems, fmt.Sprintf("unknown reason %q", b.Reason))
		}
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("risk: base %d %q: %s", i, b.Action, strings.Join(problems, "; ")))
			continue
		}
		e.base = append(e.base, ActionBase{Action: action, Level: b.Level, Reason: b.Reason})
	}

	firstAt := map[string]int{}
	for i, r := range rules {
		c, problems := compile(r)
		if j, dup := firstAt[r.ID]; dup && r.ID != "" {
			problems = append(problems, fmt.Sprintf("duplicate id (first at rule %d)", j))
		} else {
			firstAt[r.ID] = i
		}
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("risk: rule %d %q: %s", i, r.ID, strings.Join(problems, "; ")))
			continue
		}
		e.rules = append(e.rules, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

func compile(r Rule) (compiledRule, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	c := compiledRule{id: r.ID, reason: r.Reason, level: r.Level, fold: r.Fold, wordOnly: r.WordStart,
		origin: OriginCustom, defaultLevel: r.Level}
	if strings.TrimSpace(r.ID) == "" {
		bad("empty id")
	}
	if !KnownReason(r.Reason) {
		bad("unknown reason %q", r.Reason)
	}
	if !r.Level.Valid() {
		bad("invalid level %d", int(r.Level))
	}
	if len(r.Actions) == 0 {
		bad(`no actions (use "*" for every action)`)
	}
	for _, a := range r.Actions {
		if g := normalize(a); g == "" {
			bad("empty action glob")
		} else {
			c.actions = append(c.actions, g)
		}
	}
	for _, k := range r.Kinds {
		if k := normalize(k); !knownKind(k) {
			bad("unknown payload kind %q", k)
		} else {
			c.kinds = append(c.kinds, k)
		}
	}

	switch {
	case r.Within == "":
	case len(r.Within) != 1 || !isSeparator(r.Within[0]):
		bad("within %q must be one ASCII punctuation or space character", r.Within)
	default:
		c.within = r.Within[0]
	}
	for _, k := range r.Keywords {
		k = strings.ToLower(k)
		switch {
		case k == "":
			bad("empty keyword")
		case !isASCII(k):
			// The prefilter folds ASCII only; a non-ASCII keyword could
			// silently never match.
			bad("keyword %q is not ASCII", k)
		case strings.IndexByte(k, '\n') >= 0 || c.within != 0 && strings.IndexByte(k, c.within) >= 0:
			// Pieces and lines are cut at these bytes, so such a keyword
			// could straddle a cut and never be seen whole.
			bad("keyword %q contains a newline or the within separator", k)
		default:
			c.keywords = append(c.keywords, k)
		}
	}

	if r.Pattern == "" {
		if len(r.Keywords) > 0 || len(r.Require) > 0 || len(r.Unless) > 0 || r.Within != "" || r.Fold || r.WordStart {
			bad("keywords, require, unless, within, fold and wordstart need a pattern")
		}
	} else if re, err := regexp.Compile(r.Pattern); err != nil {
		bad("bad pattern: %v", err)
	} else {
		c.re = re
		c.needs = neededLiteral(r.Pattern)
		if len(c.keywords) > 0 && startsText(r.Pattern) {
			bad(`pattern uses \A or a non-multiline ^, which keywords do not allow`)
		}
		if r.Fold && upperLiteral(r.Pattern) {
			bad("pattern has an upper-case letter that can never match a folded payload")
		}
	}
	compileAll := func(what string, exprs []string) (out []*regexp.Regexp) {
		for _, x := range exprs {
			re, err := regexp.Compile(x)
			switch {
			case err != nil:
				bad("bad %s: %v", what, err)
			case r.Fold && upperLiteral(x):
				bad("%s %q has an upper-case letter that can never match a folded payload", what, x)
			default:
				out = append(out, re)
			}
		}
		return out
	}
	c.require = compileAll("require", r.Require)
	c.unless = compileAll("unless", r.Unless)

	if !r.Label.isZero() {
		c.label = true
		if len(r.Label.Keys) == 0 {
			bad("label values without keys")
		}
		for _, k := range r.Label.Keys {
			if k = normalize(k); k == "" {
				bad("empty label key")
			}
			c.keys = append(c.keys, k)
		}
		for _, v := range r.Label.Values {
			c.values = append(c.values, normalize(v))
		}
	}
	return c, problems
}

// Derive assesses one handoff. It never fails: an unknown action gets the
// lowest base level but still meets every payload rule, and an unknown kind
// counts as unstated so that it cannot switch rules off.
func (e *Engine) Derive(in Input) Assessment { return e.derive(in, true) }

// derive can switch the keyword prefilter off so tests can check that it
// only saves time and never changes a result.
func (e *Engine) derive(in Input, prefilter bool) Assessment {
	action := normalize(in.Action)
	kind := normalize(in.PayloadKind)
	if !knownKind(kind) {
		// An unrecognised kind must not switch rules off; treat it as unsaid.
		kind = ""
	}

	a := Assessment{Level: Low, Reasons: []Reason{}, Rules: []string{}}
	raise := func(l Level, r Reason) {
		a.Level = max(a.Level, l)
		if r != "" && !slices.Contains(a.Reasons, r) {
			a.Reasons = append(a.Reasons, r)
		}
	}
	for _, b := range e.base {
		if glob(b.Action, action) {
			raise(b.Level, b.Reason)
			break
		}
	}

	var p *payload
	for i := range e.rules {
		r := &e.rules[i]
		if !r.applies(action, kind) || (r.label && !r.labelMatch(in.Labels)) {
			continue
		}
		if r.re != nil {
			if p == nil {
				p = prepare(in.Payload)
			}
			if !r.matchPayload(p, prefilter) {
				continue
			}
		}
		raise(r.level, r.reason)
		a.Rules = append(a.Rules, r.id)
	}
	// Policy floors come last, after every rule, in policy order.
	for i := range e.floors {
		if f := &e.floors[i]; f.matches(action, in.Labels) {
			raise(f.level, ReasonOrgPolicy)
			a.Rules = append(a.Rules, f.id)
		}
	}
	return a
}

func (r *compiledRule) applies(action, kind string) bool {
	return r.kindMatch(kind) && r.actionMatch(action)
}

func (r *compiledRule) kindMatch(kind string) bool {
	return len(r.kinds) == 0 || slices.Contains(r.kinds, kind)
}

func (r *compiledRule) actionMatch(action string) bool {
	for _, g := range r.actions {
		if glob(g, action) {
			return true
		}
	}
	return false
}

func (r *compiledRule) labelMatch(labels map[string]string) bool {
	for k, v := range labels {
		if !slices.ContainsFunc(r.keys, func(want string) bool { return strings.EqualFold(strings.TrimSpace(k), want) }) {
			continue
		}
		if len(r.values) == 0 || slices.ContainsFunc(r.values, func(want string) bool { return strings.EqualFold(strings.TrimSpace(v), want) }) {
			return true
		}
	}
	return false
}

// payload is the text the patterns see and its ASCII-lowered twin, byte for
// byte aligned, which the keyword prefilter searches.
type payload struct{ text, lower string }

func prepare(s string) *payload {
	// RE2's (?i) treats the Kelvin sign as k and the long s as s. Folding
	// them first means a case-insensitive match always shows up in the
	// ASCII-lowered copy, so the prefilter never hides a match.
	if strings.Contains(s, "\u212a") {
		s = strings.ReplaceAll(s, "\u212a", "k")
	}
	if strings.Contains(s, "\u017f") {
		s = strings.ReplaceAll(s, "\u017f", "s")
	}
	return &payload{text: s, lower: asciiLower(s)}
}

func (r *compiledRule) matchPayload(p *payload, prefilter bool) bool {
	if !prefilter || len(r.keywords) == 0 {
		return r.matchPieces(p.subject(r.fold))
	}
	return r.matchNearKeywords(p)
}

// subject is what the patterns of a rule read.
func (p *payload) subject(fold bool) string {
	if fold {
		return p.lower
	}
	return p.text
}

// matchPieces is the plain definition of Within: try every piece.
func (r *compiledRule) matchPieces(text string) bool {
	if r.within == 0 {
		return r.matchSpan(text)
	}
	for {
		i := strings.IndexByte(text, r.within)
		if i < 0 {
			return r.matchSpan(text)
		}
		if r.matchSpan(text[:i]) {
			return true
		}
		text = text[i+1:]
	}
}

// matchNearKeywords gives the same answer as matchPieces for less work. It
// skips pieces without a keyword, and within a piece starts at the line of
// the first keyword, since by the Keywords contract no match starts before
// it. Starting at a line start keeps (?m)^ and \b seeing what they would
// in the whole piece. Each keyword's next occurrence is remembered, so the
// payload is searched once per keyword however many pieces there are.
func (r *compiledRule) matchNearKeywords(p *payload) bool {
	text := p.subject(r.fold) // same length and separators as p.lower
	var buf [8]int
	next := buf[:0]
	for range r.keywords {
		next = append(next, -2) // not searched yet
	}
	for pos := 0; pos <= len(text); {
		hit := -1
		for i, k := range r.keywords {
			if next[i] != -1 && next[i] < pos {
				if j := strings.Index(p.lower[pos:], k); j < 0 {
					next[i] = -1
				} else {
					next[i] = pos + j
				}
			}
			if next[i] >= 0 && (hit < 0 || next[i] < hit) {
				hit = next[i]
			}
		}
		if hit < 0 {
			return false
		}
		start, end := pos, len(text)
		if r.within != 0 {
			if i := strings.LastIndexByte(text[pos:hit], r.within); i >= 0 {
				start = pos + i + 1
			}
			if i := strings.IndexByte(text[hit:], r.within); i >= 0 {
				end = hit + i
			}
		}
		if i := strings.LastIndexByte(text[start:hit], '\n'); i >= 0 {
			start += i + 1
		}
		if (r.needs == "" || strings.Contains(p.lower[start:end], r.needs)) && r.matchSpan(text[start:end]) {
			return true
		}
		pos = end + 1
	}
	return false
}

func (r *compiledRule) matchSpan(s string) bool {
	if len(r.require) == 0 && len(r.unless) == 0 && !r.wordOnly {
		return r.re.MatchString(s)
	}
	for _, m := range r.re.FindAllStringIndex(s, -1) {
		if r.wordOnly && m[0] > 0 && isWordByte(s[m[0]-1]) {
			continue
		}
		if r.refined(s[m[0]:m[1]]) {
			return true
		}
	}
	return false
}

func (r *compiledRule) refined(match string) bool {
	for _, re := range r.require {
		if !re.MatchString(match) {
			return false
		}
	}
	for _, re := range r.unless {
		if re.MatchString(match) {
			return false
		}
	}
	return true
}

// neededLiteral returns the longest ASCII literal that every match of pattern contains, lowered, or
// "" when there is none. Only what a match cannot do without counts: a literal in a concatenation, or
// under a capture or a repeat of at least one; an alternation or an optional part needs nothing.
// Lowering is safe for the prefilter's search: the payload's lowered twin holds a literal's lowered
// form wherever the payload holds the literal in any ASCII case, and (?i) folds of k and s to
// non-ASCII runes are folded to ASCII before (prepare).
func neededLiteral(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	var best string
	var walk func(*syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			if lit := string(re.Rune); isASCII(lit) && len(lit) > len(best) {
				best = asciiLower(lit)
			}
		case syntax.OpConcat, syntax.OpCapture, syntax.OpPlus:
			for _, sub := range re.Sub {
				walk(sub)
			}
		case syntax.OpRepeat:
			if re.Min >= 1 {
				walk(re.Sub[0])
			}
		}
	}
	walk(re.Simplify())
	return best
}

// startsText reports whether pattern can assert the beginning of the text.
func startsText(pattern string) bool {
	return anyNode(pattern, func(re *syntax.Regexp) bool { return re.Op == syntax.OpBeginText })
}

// upperLiteral reports whether pattern spells out a case-sensitive A-Z.
func upperLiteral(pattern string) bool {
	return anyNode(pattern, func(re *syntax.Regexp) bool {
		return re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0 &&
			slices.ContainsFunc(re.Rune, func(c rune) bool { return 'A' <= c && c <= 'Z' })
	})
}

// anyNode reports whether some node of the parsed pattern satisfies f.
func anyNode(pattern string, f func(*syntax.Regexp) bool) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	var walk func(*syntax.Regexp) bool
	walk = func(re *syntax.Regexp) bool { return f(re) || slices.ContainsFunc(re.Sub, walk) }
	return walk(re)
}

// glob matches s against pattern, where '*' stands for any run of
// characters, including dots. Only the last '*' is ever revisited, so the
// cost is bounded by len(pattern)*len(s) on short action names.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p, mark = star+1, mark+1
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isWordByte is RE2's notion of a word character, which is ASCII only.
func isWordByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_'
}

func isSeparator(b byte) bool {
	return b < utf8.RuneSelf && !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9')
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
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
