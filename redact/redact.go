// Package redact finds secrets in text, commands, diffs, logs and JSON and replaces them with
// fingerprinted markers, builds the secret-free gist channels carry, and guards every egress.
//
// Detection follows the house style of package risk: every detector names keywords, an ASCII
// case-insensitive scan finds them in one pass, and the detector's RE2 expression (linear time)
// runs only on the lines that hold one. A few detectors are small hand-written scanners
// (PEM blocks, high-entropy values, encoded runs); they are linear too.
//
// A secret found once is redacted wherever else it occurs in the same input (if it is at least
// 8 bytes long), so a password echoed later in a log does not survive its first sighting.
package redact

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// Finding kinds. The set is closed apart from "custom:<name>" for an organisation's own rules.
const (
	KindAWSAccessKey          = "aws_access_key"
	KindAWSSecretKey          = "aws_secret_key"
	KindGCPServiceAccount     = "gcp_service_account"
	KindGCPAPIKey             = "gcp_api_key"
	KindAzureStorageKey       = "azure_storage_key"
	KindAzureConnectionString = "azure_connection_string"
	KindGitHubToken           = "github_token"
	KindGitLabToken           = "gitlab_token"
	KindSlackToken            = "slack_token"
	KindSlackWebhook          = "slack_webhook"
	KindTelegramBotToken      = "telegram_bot_token"
	KindTwilioKey             = "twilio_key"
	KindStripeKey             = "stripe_key"
	KindOpenAIKey             = "openai_key"
	KindAnthropicKey          = "anthropic_key"
	KindJWT                   = "jwt"
	KindPrivateKey            = "private_key"
	KindURLPassword           = "url_password"
	KindAuthorizationHeader   = "authorization_header"
	KindSecretAssignment      = "secret_assignment"
	KindHighEntropy           = "high_entropy"
	KindEncodedSecret         = "encoded_secret"
	// CustomKindPrefix starts the kind of a finding made by a custom rule: "custom:<name>".
	CustomKindPrefix = "custom:"
)

// Kinds lists the built-in kinds, for callers that validate or count them.
func Kinds() []string {
	return []string{KindAWSAccessKey, KindAWSSecretKey, KindGCPServiceAccount, KindGCPAPIKey,
		KindAzureStorageKey, KindAzureConnectionString, KindGitHubToken, KindGitLabToken, KindSlackToken,
		KindSlackWebhook, KindTelegramBotToken, KindTwilioKey, KindStripeKey, KindOpenAIKey, KindAnthropicKey,
		KindJWT, KindPrivateKey, KindURLPassword, KindAuthorizationHeader, KindSecretAssignment,
		KindHighEntropy, KindEncodedSecret}
}

// Finding is one secret in an input. It never holds the secret itself.
type Finding struct {
	Kind        string `json:"kind"`
	Start       int    `json:"start"`       // byte offset of the secret span in the input
	End         int    `json:"end"`         // exclusive
	Fingerprint string `json:"fingerprint"` // first 12 hex digits of HMAC-SHA256(orgKey, secret)
}

// Rule is an organisation's own detector.
type Rule struct {
	// Name makes the kind "custom:<name>": 1–64 bytes of [A-Za-z0-9_.-].
	Name string
	// Pattern is an RE2 expression. It may not match the empty string.
	Pattern string
	// Keywords, if any, are a prefilter compared ASCII case-insensitively: Pattern then runs only
	// on the lines that hold one (so ^ and $ mean that line's ends and a match cannot cross a
	// line). Without keywords Pattern runs over the whole input.
	Keywords []string
	// Group is the capture group holding the secret; 0 means the whole match.
	Group int
	// Matches are taken as they are: no placeholder or entropy filtering, no edge checks.
	// Custom rules come first, so where a custom finding overlaps a built-in one, the custom
	// kind names the merged span.
}

// Options configure New.
type Options struct {
	Custom []Rule
	// MinEntropy is the Shannon entropy, in bits per character, a value next to a secret-like
	// name needs to be reported as high_entropy. 0 means DefaultMinEntropy.
	MinEntropy float64
}

// DefaultMinEntropy is Options.MinEntropy when left zero.
const DefaultMinEntropy = 3.5

// Redactor finds and redacts secrets. It is immutable after New, so one Redactor may serve
// concurrent calls.
type Redactor struct {
	dets       []*detector // priority order: custom rules, then the built-ins
	index      *keywordIndex
	minEntropy float64
	keywordAll []int // detectors that run without keywords
	// hook, if set, runs at the start of every scan; tests use it to make the redactor fail.
	hook func()
	// observe, if set, is told the kind of every secret found (Observed).
	observe func(kind string)
}

// Observed returns a redactor like r that tells observe the kind of every secret it finds (the
// operator's metrics count them); r itself is unchanged.
func (r *Redactor) Observed(observe func(kind string)) *Redactor {
	c := *r
	c.observe = observe
	return &c
}

var defaultRedactor = sync.OnceValue(func() *Redactor {
	r, err := New(Options{})
	if err != nil {
		panic("redact: built-in rules are invalid: " + err.Error())
	}
	return r
})

// Default returns the redactor with the built-in rules only, built once.
func Default() *Redactor { return defaultRedactor() }

var ruleName = lazyregexp.New(`^[A-Za-z0-9_.\-]{1,64}$`)

// New validates the custom rules and returns a redactor using them before the built-ins.
// The error lists every bad rule, not just the first.
func New(o Options) (*Redactor, error) {
	var errs []error
	r := &Redactor{minEntropy: o.MinEntropy}
	if r.minEntropy == 0 {
		r.minEntropy = DefaultMinEntropy
	}
	if math.IsNaN(o.MinEntropy) || o.MinEntropy < 0 || o.MinEntropy > 8 {
		errs = append(errs, fmt.Errorf("redact: MinEntropy %v is outside 0–8 bits per character", o.MinEntropy))
	}
	firstAt := map[string]int{}
	for i, c := range o.Custom {
		d, problems := compileCustom(c)
		if j, dup := firstAt[c.Name]; dup {
			problems = append(problems, fmt.Sprintf("duplicate name (first at rule %d)", j))
		} else {
			firstAt[c.Name] = i
		}
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("redact: custom rule %d %q: %s", i, c.Name, strings.Join(problems, "; ")))
			continue
		}
		r.dets = append(r.dets, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.dets = append(r.dets, builtins()...)
	for i, d := range r.dets {
		d := *d // the built-ins are shared; priority is per redactor
		d.prio = i
		r.dets[i] = &d
		if len(d.keywords) == 0 {
			r.keywordAll = append(r.keywordAll, i)
		}
	}
	r.index = newKeywordIndex(r.dets)
	return r, nil
}

func compileCustom(c Rule) (*detector, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !ruleName.MatchString(c.Name) {
		bad("name must be 1–64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
	}
	d := &detector{kind: CustomKindPrefix + c.Name, group: c.Group, custom: true}
	if c.Pattern == "" {
		bad("empty pattern")
	} else if re, err := regexp.Compile(c.Pattern); err != nil {
		bad("bad pattern: %v", err)
	} else {
		d.re = re
		if re.MatchString("") {
			bad("pattern matches the empty string")
		}
		if c.Group < 0 || c.Group > re.NumSubexp() {
			bad("group %d out of range (the pattern has %d)", c.Group, re.NumSubexp())
		}
	}
	for _, k := range c.Keywords {
		switch {
		case k == "":
			bad("empty keyword")
		case !isASCII(k):
			// The prefilter folds ASCII only; a non-ASCII keyword could silently never match.
			bad("keyword %q is not ASCII", k)
		case strings.ContainsAny(k, "\r\n"):
			bad("keyword %q contains a line break", k)
		default:
			d.keywords = append(d.keywords, strings.ToLower(k))
		}
	}
	return d, problems
}

// Fingerprint names a secret without revealing it: the first 12 hex digits of
// HMAC-SHA256(key, secret). With a secret key it cannot be reversed or tested against guesses.
func Fingerprint(key []byte, secret string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:6])
}

// Marker is the text that replaces a secret of the given kind.
func Marker(kind, fingerprint string) string { return "[REDACTED:" + kind + ":" + fingerprint + "]" }

// Find reports the secrets in text, sorted and non-overlapping: overlapping findings are
// merged into one span covering them all, named by the most specific detector among them.
func (r *Redactor) Find(key []byte, text string) []Finding {
	fs, _ := r.find(context.Background(), key, text)
	return fs
}

// Redact replaces each secret span with "[REDACTED:<kind>:<fingerprint>]" and keeps the
// surrounding text. It also reports what it replaced.
func (r *Redactor) Redact(key []byte, text string) (string, []Finding) {
	out, fs, _ := r.redact(context.Background(), key, text)
	return out, fs
}

func (r *Redactor) redact(ctx context.Context, key []byte, text string) (string, []Finding, error) {
	fs, err := r.find(ctx, key, text)
	if err != nil {
		return "", nil, err
	}
	return apply(text, fs), fs, nil
}

// apply replaces the spans of fs (sorted, disjoint) with markers.
func apply(text string, fs []Finding) string {
	if len(fs) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 40*len(fs))
	at := 0
	for _, f := range fs {
		b.WriteString(text[at:f.Start])
		b.WriteString(Marker(f.Kind, f.Fingerprint))
		at = f.End
	}
	b.WriteString(text[at:])
	return b.String()
}

func (r *Redactor) find(ctx context.Context, key []byte, text string) ([]Finding, error) {
	spans, err := r.spans(ctx, []string{text})
	if err != nil {
		return nil, err
	}
	return r.findings(key, text, spans[0]), nil
}

// spans finds the secrets of several texts that travel together (a JSON document's strings, a
// gist's fields): a secret found in one is redacted wherever it occurs in any of them.
func (r *Redactor) spans(ctx context.Context, texts []string) ([][]cand, error) {
	out := make([][]cand, len(texts))
	for i, t := range texts {
		cs, err := r.scan(ctx, t, 0)
		if err != nil {
			return nil, err
		}
		out[i] = cs
	}
	propagate(texts, out)
	return out, ctx.Err()
}

// propagate adds to cands[i] every occurrence in texts[i] of a secret found in any text.
func propagate(texts []string, cands [][]cand) {
	seen := map[string]cand{}
	for i, cs := range cands {
		for _, c := range cs {
			if len(seen) >= maxPropagated {
				break
			}
			if s := texts[i][c.start:c.end]; len(s) >= propagateMin && len(s) <= maxPropagatedLen {
				if old, ok := seen[s]; !ok || c.prio < old.prio {
					seen[s] = c
				}
			}
		}
	}
	if len(seen) == 0 {
		return
	}
	for i, t := range texts {
		if more := occurrences(t, seen); len(more) > 0 {
			cands[i] = merge(append(cands[i], more...))
		}
	}
}

// propagateMin is the shortest secret that is redacted wherever it recurs: shorter ones would
// take ordinary words with them.
const propagateMin = 8

// Only the first maxPropagated secrets of at most maxPropagatedLen bytes are chased: longer
// ones (key blocks, blobs) do not recur, and the bound keeps adversarial input linear.
const (
	maxPropagated    = 256
	maxPropagatedLen = 512
)

func (r *Redactor) findings(key []byte, text string, cs []cand) []Finding {
	if len(cs) == 0 {
		return nil
	}
	fs := make([]Finding, len(cs))
	for i, c := range cs {
		fs[i] = Finding{Kind: c.kind, Start: c.start, End: c.end, Fingerprint: Fingerprint(key, text[c.start:c.end])}
		if r.observe != nil {
			r.observe(c.kind)
		}
	}
	return fs
}

// cand is a secret span before merging; prio orders kinds for equal spans (lower wins).
type cand struct {
	start, end int
	prio       int
	kind       string
}

// merge sorts cands and unites overlapping ones. The united span covers all of them (never
// less, so nothing leaks at the edges) and takes the kind of its most specific member, the one
// with the lowest priority number: a token inside a wider assignment stays "github_token".
func merge(cs []cand) []cand {
	if len(cs) < 2 {
		return cs
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.end != b.end {
			return b.end - a.end
		}
		return a.prio - b.prio
	})
	out := cs[:1]
	for _, c := range cs[1:] {
		cur := &out[len(out)-1]
		if c.start >= cur.end {
			out = append(out, c)
			continue
		}
		cur.end = max(cur.end, c.end)
		if c.prio < cur.prio {
			cur.kind, cur.prio = c.kind, c.prio
		}
	}
	return out
}

// occurrences returns a cand for every place a known secret occurs in t.
func occurrences(t string, seen map[string]cand) []cand {
	var out []cand
	if len(seen) <= 16 {
		for s, c := range seen {
			for at := 0; ; {
				i := strings.Index(t[at:], s)
				if i < 0 {
					break
				}
				out = append(out, cand{start: at + i, end: at + i + len(s), prio: c.prio, kind: c.kind})
				at += i + 1
			}
		}
		return out
	}
	// Many secrets: one pass, filtering positions by their first 8 bytes.
	byHead := map[string][]string{}
	var bloom [1 << 10]uint64
	for s := range seen {
		h := s[:propagateMin]
		byHead[h] = append(byHead[h], s)
		x := hash8(h)
		bloom[x>>6&(1<<10-1)] |= 1 << (x & 63)
	}
	for i := 0; i+propagateMin <= len(t); i++ {
		x := hash8(t[i : i+propagateMin])
		if bloom[x>>6&(1<<10-1)]&(1<<(x&63)) == 0 {
			continue
		}
		for _, s := range byHead[t[i:i+propagateMin]] {
			if strings.HasPrefix(t[i:], s) {
				c := seen[s]
				out = append(out, cand{start: i, end: i + len(s), prio: c.prio, kind: c.kind})
			}
		}
	}
	return out
}

func hash8(s string) uint64 {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	x *= 0x9E3779B97F4A7C15
	return x >> 48
}

// markerRe matches a marker at the start of its input.
var markerRe = lazyregexp.New(`^\[REDACTED:(?:custom:[A-Za-z0-9_.\-]{1,64}|[a-z0-9_]{1,32}):[0-9a-f]{12}\]`)

// markers returns the spans of the markers already in text, so that redacting twice changes
// nothing and a marker's words (kinds say "key", "secret", "token") never trigger a detector.
func markers(text string) []span {
	var out []span
	for at := 0; ; {
		i := strings.Index(text[at:], "[REDACTED:")
		if i < 0 {
			return out
		}
		at += i
		if m := markerRe.FindStringIndex(text[at:]); m != nil {
			out = append(out, span{at, at + m[1]})
			at += m[1]
		} else {
			at++
		}
	}
}

type span struct{ start, end int }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
