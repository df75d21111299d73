package redact

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Gist builds the short, secret-free text a channel may carry:
//
//	[risk] action: title — summary
//
// Every field is redacted first (a secret seen in one is redacted in all), then control
// characters and line breaks become spaces, runs of spaces collapse, and the result is cut to
// at most maxRunes runes on a word boundary, ending with "…" when cut; maxRunes ≤ 0 means no
// limit. The limit bounds the whole gist: the header keeps its room first and the summary gets
// what is left (when fewer than 12 runes remain it is reduced to "…"). The finished gist is scanned
// once more, since joining fields can make an assignment out of two halves. A nil redactor
// means Default().
func Gist(r *Redactor, key []byte, action, risk, title, summary string, maxRunes int) string {
	if r == nil {
		r = Default()
	}
	fields := []string{action, risk, title, summary}
	if spans, err := r.spans(context.Background(), fields); err == nil {
		for i, f := range fields {
			fields[i] = apply(f, r.findings(key, f, spans[i]))
		}
	}
	for i := range fields {
		fields[i] = oneLine(fields[i])
	}
	action, risk, title, summary = fields[0], fields[1], fields[2], fields[3]

	head := action
	if risk != "" {
		head = "[" + risk + "] " + head
	}
	if title != "" {
		if head != "" {
			head += ": "
		}
		head += title
	}
	g := head
	if summary != "" {
		sep := " — "
		if head == "" {
			sep = ""
		}
		switch room := maxRunes - utf8.RuneCountInString(head) - utf8.RuneCountInString(sep); {
		case maxRunes <= 0:
			g = head + sep + summary
		case room >= 12:
			g = head + sep + truncate(summary, room)
		case maxRunes-utf8.RuneCountInString(head) >= 2:
			g = head + " …" // there is more, but no room to show it
		}
	}
	g = truncate(g, maxRunes)
	// Joining fields can line up a name and a value; what the channel gets is checked whole.
	for range 3 {
		red, fs := r.Redact(key, g)
		if len(fs) == 0 {
			return g
		}
		g = truncate(red, maxRunes)
	}
	if len(r.Find(key, g)) == 0 {
		return g
	}
	return truncate("[gist withheld]", maxRunes)
}

// oneLine turns control characters (line breaks included) and bidirectional overrides into
// spaces, collapses runs of spaces and trims.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drop leading spaces
	for _, c := range s {
		if unicode.IsControl(c) || unicode.IsSpace(c) || unicode.Is(unicode.Bidi_Control, c) || c == utf8.RuneError {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(c)
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}

// truncate cuts s to at most n runes, "…" included, preferring a word boundary in the last
// third and never splitting a redaction marker. n ≤ 0 means no limit.
func truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	// byte offset of the (n-1)th rune: room for the ellipsis
	cut, count := 0, 0
	for i := range s {
		if count == n-1 {
			cut = i
			break
		}
		count++
	}
	// Never split a marker: cut before it.
	if open := strings.LastIndex(s[:cut], "[REDACTED:"); open >= 0 && !strings.Contains(s[open:cut], "]") {
		cut = open
	}
	if sp := strings.LastIndexByte(s[:cut], ' '); sp >= 0 && utf8.RuneCountInString(s[:sp]) >= (n-1)*2/3 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " ,;:—-") + "…"
}
