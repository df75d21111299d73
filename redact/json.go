package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalidJSON is RedactJSON's answer to input that is not JSON.
var ErrInvalidJSON = errors.New("redact: invalid JSON")

// maxJSONDepth bounds how deep JSON documents held in JSON strings are opened.
const maxJSONDepth = 3

// RedactJSON redacts a JSON document and keeps its structure, key order and layout: only
// string contents change. Inside every string (keys too) the text detectors run. A string
// value whose key says secret, password, token, api_key, private_key… is redacted whole
// (unless it is a placeholder), and so is every string anywhere inside an object or array held
// by such a key ("credentials": {…}); a number under a password-like key becomes a marker
// string. A string that holds a JSON document (a tool call's "arguments") is redacted as JSON.
//
// Findings' Start and End are offsets in data of the secret's encoded form inside its string;
// fingerprints are of the decoded secret, as the marker shows.
func (r *Redactor) RedactJSON(key []byte, data []byte) ([]byte, []Finding, error) {
	return r.redactJSON(context.Background(), key, data, 0)
}

// jstr is one string literal of a document.
type jstr struct {
	start, end int    // the literal in data, quotes included
	text       string // decoded
	off        []int  // off[i]: offset in data[start:end] where decoded byte i comes from; off[len(text)] is the closing quote
	whole      bool   // a value under a secret name
	key        bool
}

func (r *Redactor) redactJSON(ctx context.Context, key []byte, data []byte, depth int) ([]byte, []Finding, error) {
	if !json.Valid(data) {
		return nil, nil, ErrInvalidJSON
	}
	if r.hook != nil {
		r.hook()
	}
	strs, lits := walkJSON(data)
	texts := make([]string, len(strs))
	cands := make([][]cand, len(strs))
	nested := map[int]nestedResult{}
	for i, s := range strs {
		texts[i] = s.text
		if !s.key && depth < maxJSONDepth && !s.whole && looksJSON(s.text) {
			out, fs, err := r.redactJSON(ctx, key, []byte(s.text), depth+1)
			if err == nil {
				nested[i] = nestedResult{string(out), fs}
				continue
			}
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
		}
		cs, err := r.scan(ctx, s.text, 0)
		if err != nil {
			return nil, nil, err
		}
		if s.whole && !placeholder(s.text) {
			cs = append(cs, cand{start: 0, end: len(s.text), prio: r.assignPrio(), kind: KindSecretAssignment})
		}
		cands[i] = merge(cs)
	}
	// Detectors that read context across strings ("d": "…" in a JSON Web Key, "name": "X",
	// "value": "…") see the document whole: what they find inside a string is added to it.
	raw, err := r.scan(ctx, string(data), 0)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range raw {
		i, _ := slices.BinarySearchFunc(strs, c.start, func(s jstr, at int) int {
			if s.end <= at {
				return -1
			}
			if s.start > at {
				return 1
			}
			return 0
		})
		for ; i < len(strs) && strs[i].start < c.end; i++ {
			s := strs[i]
			if _, isNested := nested[i]; isNested {
				continue
			}
			// Clip to the literal's inside and translate to decoded offsets.
			a, b := max(c.start, s.start+1)-s.start, min(c.end, s.end-1)-s.start
			da, _ := slices.BinarySearch(s.off, a)
			db, _ := slices.BinarySearch(s.off, b)
			if db > da {
				cands[i] = merge(append(cands[i], cand{start: da, end: db, prio: c.prio, kind: c.kind}))
			}
		}
	}
	propagate(texts, cands)

	type edit struct {
		start, end int
		repl       []byte
	}
	var edits []edit
	var fs []Finding
	for i, s := range strs {
		n, isNested := nested[i]
		local := n.fs
		if !isNested {
			local = r.findings(key, s.text, cands[i])
		}
		if len(local) == 0 {
			continue
		}
		if isNested {
			edits = append(edits, edit{s.start, s.end, encodeJSONString(n.out)})
		}
		for _, f := range local {
			f.Start, f.End = s.start+s.off[f.Start], s.start+s.off[f.End]
			fs = append(fs, f)
			if !isNested {
				// Markers need no escaping, so the literal is edited in place and keeps its
				// other escapes as they were.
				edits = append(edits, edit{f.Start, f.End, []byte(Marker(f.Kind, f.Fingerprint))})
			}
		}
	}
	for _, l := range lits {
		secret := string(data[l.start:l.end])
		f := Finding{Kind: KindSecretAssignment, Start: l.start, End: l.end, Fingerprint: Fingerprint(key, secret)}
		if r.observe != nil {
			r.observe(f.Kind)
		}
		fs = append(fs, f)
		edits = append(edits, edit{l.start, l.end, encodeJSONString(Marker(f.Kind, f.Fingerprint))})
	}
	if len(edits) == 0 {
		return slices.Clone(data), nil, nil
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	slices.SortFunc(fs, func(a, b Finding) int { return a.Start - b.Start })
	var out bytes.Buffer
	out.Grow(len(data) + 40*len(edits))
	at := 0
	for _, e := range edits {
		out.Write(data[at:e.start])
		out.Write(e.repl)
		at = e.end
	}
	out.Write(data[at:])
	return out.Bytes(), fs, nil
}

type nestedResult struct {
	out string
	fs  []Finding
}

// assignPrio is the priority of the secret_assignment kind in r.
func (r *Redactor) assignPrio() int {
	for _, d := range r.dets {
		if d.kind == KindSecretAssignment {
			return d.prio
		}
	}
	return len(r.dets)
}

// aboutName: a key naming something public about a secret (user, type, url, id, …).
func aboutName(key string) bool {
	words := splitName(key)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if notSecretWords[w] {
			return true
		}
	}
	return notSecretLast[words[len(words)-1]]
}

func looksJSON(s string) bool {
	t := strings.TrimSpace(s)
	return len(t) >= 2 && (t[0] == '{' && t[len(t)-1] == '}' || t[0] == '[' && t[len(t)-1] == ']')
}

// walkJSON lists the string literals of a valid document with their roles, and the number
// literals that sit directly under a password-like key.
func walkJSON(data []byte) (strs []jstr, lits []span) {
	type frame struct {
		obj, expectKey, secret bool
		key                    string
	}
	var st []frame
	// valueCtx: is the next value inside a secret, and is its own key password-like?
	valueCtx := func() (secret, password bool) {
		if len(st) == 0 {
			return false, false
		}
		f := st[len(st)-1]
		if !f.obj {
			return f.secret, false
		}
		strong := classifyName(f.key) == nameStrong
		// Inside a secret object every value is secret, except those whose key says what they
		// are about: "user", "username", "type", "url"…
		return f.secret && !aboutName(f.key) || strong, strong && passwordish(splitName(f.key))
	}
	for i := 0; i < len(data); {
		c := data[i]
		switch c {
		case '{', '[':
			sec, _ := valueCtx()
			st = append(st, frame{obj: c == '{', expectKey: c == '{', secret: sec})
			i++
		case '}', ']':
			st = st[:len(st)-1]
			i++
		case ',':
			if n := len(st); n > 0 && st[n-1].obj {
				st[n-1].expectKey = true
			}
			i++
		case ':':
			st[len(st)-1].expectKey = false
			i++
		case ' ', '\t', '\r', '\n':
			i++
		case '"':
			j := stringEnd(data, i)
			text, off := decodeJSONString(data[i:j])
			if n := len(st); n > 0 && st[n-1].obj && st[n-1].expectKey {
				st[n-1].key = text
				strs = append(strs, jstr{start: i, end: j, text: text, off: off, key: true})
			} else {
				sec, _ := valueCtx()
				strs = append(strs, jstr{start: i, end: j, text: text, off: off, whole: sec})
			}
			i = j
		default: // number, true, false, null
			j := i
			for j < len(data) && !strings.ContainsRune(",]}: \t\r\n", rune(data[j])) {
				j++
			}
			if _, pw := valueCtx(); pw && (c == '-' || '0' <= c && c <= '9') {
				lits = append(lits, span{i, j})
			}
			i = j
		}
	}
	return strs, lits
}

// stringEnd returns the offset just past the string literal starting at data[i] == '"'.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// decodeJSONString decodes a literal (quotes included) and maps each decoded byte back to
// the offset of the character or escape it came from.
func decodeJSONString(raw []byte) (string, []int) {
	b := make([]byte, 0, len(raw))
	off := make([]int, 0, len(raw))
	end := len(raw) - 1 // the closing quote
	for i := 1; i < end; {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			off = append(off, i)
			i++
			continue
		}
		start := i
		var r rune
		switch raw[i+1] {
		case 'u':
			r = rune(hex4(raw[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) && i+6 <= end && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2 := rune(hex4(raw[i+2 : i+6])); utf16.DecodeRune(r, r2) != utf8.RuneError {
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
			}
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
		default:
			r = rune(unescape(raw[i+1]))
			i += 2
		}
		n := len(b)
		b = utf8.AppendRune(b, r)
		for range len(b) - n {
			off = append(off, start)
		}
	}
	off = append(off, end)
	return string(b), off
}

func unescape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

func hex4(h []byte) int {
	v := 0
	for _, c := range h {
		d, _ := unhex(c)
		v = v<<4 | int(d)
	}
	return v
}

// encodeJSONString quotes s as a JSON string without HTML escaping.
func encodeJSONString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
