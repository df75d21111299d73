package risk

import (
	"slices"
	"strings"
)

// Where a rule of an Engine came from, as reported by Explain.
const (
	OriginBuiltin = "builtin" // DefaultRules, possibly with a policy level
	OriginPolicy  = "policy"  // added by a Policy
	OriginCustom  = "custom"  // passed to New or NewWithBase directly
)

// Explanation shows how an Engine scored one Input. It carries byte offsets
// into the payload but never payload text, because payloads may hold
// secrets; a local tool can cut the matched text out itself.
type Explanation struct {
	// Action and Kind as the engine read them: trimmed and lower-cased, with
	// an unknown kind read as "" (not stated).
	Action string `json:"action"`
	Kind   string `json:"kind"`
	// Base is the action table entry that gave the starting level.
	Base BaseTrace `json:"base"`
	// Rules has every rule of the engine, in table order.
	Rules []RuleTrace `json:"rules"`
	// Disabled lists the built-in rules the policy switched off.
	Disabled []string `json:"disabled"`
	// Floors has every policy floor, in policy order.
	Floors []FloorTrace `json:"floors"`
	// Assessment is exactly what Derive returns for the same Input.
	Assessment Assessment `json:"assessment"`
}

// BaseTrace is the action table entry that matched. Entry is "" when none
// did, and the level starts at low.
type BaseTrace struct {
	Entry  string `json:"entry"`
	Level  Level  `json:"level"`
	Reason Reason `json:"reason"`
}

// Keyword prefilter outcomes in RuleTrace.Keywords.
const (
	KeywordsNone    = "none"    // the rule has no keywords
	KeywordsPresent = "present" // at least one keyword is in the payload
	KeywordsAbsent  = "absent"  // none is, so the pattern never runs
)

// RuleTrace is what one rule made of the Input.
type RuleTrace struct {
	ID     string `json:"id"`
	Origin string `json:"origin"` // OriginBuiltin, OriginPolicy or OriginCustom
	Reason Reason `json:"reason"`
	// Level is the level the rule raises to; DefaultLevel is the level
	// before the policy changed it (equal when it did not).
	Level        Level `json:"level"`
	DefaultLevel Level `json:"default_level"`
	// The rule is considered when the action, the kind and the labels all
	// match; a rule without a label selector always matches labels.
	ActionMatch bool   `json:"action_match"`
	KindMatch   bool   `json:"kind_match"`
	LabelMatch  bool   `json:"label_match"`
	Considered  bool   `json:"considered"`
	Keywords    string `json:"keywords"`
	Fired       bool   `json:"fired"`
	// Match is the first match of the pattern that counted, or null when the
	// rule did not fire or reads no payload.
	Match *Span `json:"match"`
}

// Span is a half-open range of byte offsets into Input.Payload.
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// FloorTrace is one policy floor; Applied is true when it matched.
type FloorTrace struct {
	ID      string `json:"id"`
	Level   Level  `json:"level"`
	Applied bool   `json:"applied"`
}

// Explain reports, rule by rule, how e scores in. Its Assessment is Derive's.
func (e *Engine) Explain(in Input) Explanation {
	action := normalize(in.Action)
	kind := normalize(in.PayloadKind)
	if !knownKind(kind) {
		kind = ""
	}
	x := Explanation{
		Action: action, Kind: kind,
		Base:       BaseTrace{Level: Low},
		Rules:      make([]RuleTrace, 0, len(e.rules)),
		Disabled:   append([]string{}, e.disabled...),
		Floors:     make([]FloorTrace, 0, len(e.floors)),
		Assessment: e.Derive(in),
	}
	for _, b := range e.base {
		if glob(b.Action, action) {
			x.Base = BaseTrace{Entry: b.Action, Level: b.Level, Reason: b.Reason}
			break
		}
	}
	p := prepare(in.Payload)
	for i := range e.rules {
		r := &e.rules[i]
		t := RuleTrace{
			ID: r.id, Origin: r.origin, Reason: r.reason, Level: r.level, DefaultLevel: r.defaultLevel,
			ActionMatch: r.actionMatch(action), KindMatch: r.kindMatch(kind),
			LabelMatch: !r.label || r.labelMatch(in.Labels),
			Keywords:   KeywordsNone,
		}
		if len(r.keywords) > 0 {
			t.Keywords = KeywordsAbsent
			if slices.ContainsFunc(r.keywords, func(k string) bool { return strings.Contains(p.lower, k) }) {
				t.Keywords = KeywordsPresent
			}
		}
		t.Considered = t.ActionMatch && t.KindMatch && t.LabelMatch
		switch {
		case !t.Considered:
		case r.re == nil:
			t.Fired = true
		case r.matchPayload(p, true):
			t.Fired = true
			if s, end, ok := r.firstSpan(p.subject(r.fold)); ok {
				t.Match = &Span{Start: originalOffset(in.Payload, s), End: originalOffset(in.Payload, end)}
			}
		}
		x.Rules = append(x.Rules, t)
	}
	for i := range e.floors {
		f := &e.floors[i]
		x.Floors = append(x.Floors, FloorTrace{ID: f.id, Level: f.level, Applied: f.matches(action, in.Labels)})
	}
	return x
}

// firstSpan finds the first match that counts, by the plain definition of
// Within (every piece in turn), as offsets into text.
func (r *compiledRule) firstSpan(text string) (start, end int, ok bool) {
	for off := 0; ; {
		piece, cut := text[off:], -1
		if r.within != 0 {
			if i := strings.IndexByte(piece, r.within); i >= 0 {
				piece, cut = piece[:i], i
			}
		}
		for _, m := range r.re.FindAllStringIndex(piece, -1) {
			if r.wordOnly && m[0] > 0 && isWordByte(piece[m[0]-1]) {
				continue
			}
			if r.refined(piece[m[0]:m[1]]) {
				return off + m[0], off + m[1], true
			}
		}
		if cut < 0 {
			return 0, 0, false
		}
		off += cut + 1
	}
}

// originalOffset maps an offset in prepare's text back to the payload,
// where the Kelvin sign (3 bytes) and the long s (2 bytes) stood for one
// byte each.
func originalOffset(orig string, off int) int {
	if !strings.Contains(orig, "\u212a") && !strings.Contains(orig, "\u017f") {
		return off
	}
	i := 0
	for j := 0; j < off && i < len(orig); j++ {
		switch {
		case strings.HasPrefix(orig[i:], "\u212a"):
			i += len("\u212a")
		case strings.HasPrefix(orig[i:], "\u017f"):
			i += len("\u017f")
		default:
			i++
		}
	}
	return i
}
