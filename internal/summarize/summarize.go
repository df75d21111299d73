// Package summarize writes the two-sentence gist a human sees first, with a chat model when one is
// configured (OpenAI-compatible API, so local models work) and deterministically otherwise.
//
// The gist travels over chat, SMS and phone, so it must never carry secrets. Deterministic builds
// it with redact.Gist from the action, risk, title and summary, never the payload. Model asks a chat
// model, but only ever sends it text that has passed redact.Guard.Clean, passes the model's answer
// through the guard again, and falls back to the deterministic gist whenever anything goes wrong.
// Neither ever logs the prompt, the payload or the answer.
package summarize

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/redact"
)

// DefaultMaxOutputRunes bounds a gist when no other bound is configured.
const DefaultMaxOutputRunes = 280

// Input is what a handoff says about itself. Every field is untrusted: it comes from an agent or
// from the systems the agent touched.
type Input struct {
	Action, Risk, Title, Summary, PayloadKind, Payload string
}

// Summarizer writes the gist a human sees first. key is the per-organization key the redactor uses
// to fingerprint what it removes.
type Summarizer interface {
	Summarize(ctx context.Context, key []byte, in Input) (string, error)
}

// Deterministic is the default summarizer: redact.Gist over the action, risk, title and summary
// (never the payload). It never fails. The zero value is usable: a nil R means redact.Default() and
// MaxRunes <= 0 means DefaultMaxOutputRunes.
type Deterministic struct {
	R        *redact.Redactor
	MaxRunes int
}

var _ Summarizer = Deterministic{}

// Summarize returns the deterministic gist and a nil error.
func (d Deterministic) Summarize(_ context.Context, key []byte, in Input) (string, error) {
	return d.gist(key, in), nil
}

func (d Deterministic) gist(key []byte, in Input) string {
	r := d.R
	if r == nil {
		r = redact.Default()
	}
	n := d.MaxRunes
	if n <= 0 {
		n = DefaultMaxOutputRunes
	}
	// Gist is secret-free by contract; oneLine and cut only ever replace characters with spaces or
	// drop a tail, so they cannot assemble a secret out of harmless pieces.
	return cut(oneLine(redact.Gist(r, key, in.Action, in.Risk, in.Title, in.Summary, n)), n)
}

// oneLine turns s into a single trimmed line: control and format characters (including newlines,
// bidi overrides and zero-width characters) and all other whitespace become single spaces. It never
// joins the text on either side of a removed character.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// cut shortens s to at most n runes, ending in an ellipsis when it had to cut. It prefers a word
// boundary in the last third and never splits a redaction marker.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	at, k := 0, 0 // byte offset of rune n-1, leaving room for the ellipsis
	for i := range s {
		if k == n-1 {
			at = i
			break
		}
		k++
	}
	// A marker straddling the cut starts at the last '[' before it (markers hold no other '[').
	if open := strings.LastIndexByte(s[:at], '['); open >= 0 && strings.HasPrefix(s[open:], markerOpen) &&
		!strings.Contains(s[open:at], "]") {
		at = open
	}
	if sp := strings.LastIndexByte(s[:at], ' '); sp > 0 && utf8.RuneCountInString(s[:sp]) >= (n-1)*2/3 {
		at = sp
	}
	return strings.TrimRightFunc(s[:at], unicode.IsSpace) + "…"
}

// markerOpen starts every redact.Marker.
const markerOpen = "[REDACTED:"
