package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/problem"
)

// checkTokens walks a body that has already decoded and refuses what encoding/json lets through
// silently: bytes that are not UTF-8 and escaped lone surrogates (both stored as U+FFFD), and a key
// given twice in one object at any depth (the decoder keeps the last, another parser may keep the
// first). Keys that differ only in case count as repeated, because the decoder matches struct fields
// case-insensitively. Errors name the place by path and byte offset, never by quoting a value.
func checkTokens(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // no float conversion: a number is only skipped here
	type frame struct {
		object bool
		keys   map[string]struct{}
		key    string // the current member's key, in an object
		index  int    // the current element's index, in an array
		isKey  bool   // the next string token in an object is a key
	}
	var stack []*frame
	// path names the current place, or its container's when the key itself is what is wrong.
	path := func(frames []*frame) string {
		var b strings.Builder
		for _, f := range frames {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(shortKey(f.key))
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if b.Len() == 0 {
			return "the body"
		}
		return strconv.Quote(b.String())
	}
	// value is called when a complete value (scalar or closed container) ends at the current level.
	value := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.object {
			top.isKey = true
		} else {
			top.index++
		}
	}
	start := int64(0)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return jsonProblem(err)
		}
		at := start
		start = dec.InputOffset()
		span := raw[at:start]
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, isKey: true, keys: map[string]struct{}{}})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				value()
			}
			continue
		case string:
			var top *frame
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
			if top != nil && top.object && top.isKey {
				if off, ok := badText(span); !ok {
					return problem.New(problem.Invalid, "invalid_utf8",
						"a key in %s is not valid UTF-8 (at byte %d); JSON text must be UTF-8", path(stack[:len(stack)-1]), at+int64(off))
				}
				top.key = t
				k := foldKey(t)
				if _, dup := top.keys[k]; dup {
					return problem.New(problem.Invalid, "duplicate_key", "%s is given twice", path(stack))
				}
				top.keys[k] = struct{}{}
				top.isKey = false
				continue
			}
			if off, ok := badText(span); !ok {
				return problem.New(problem.Invalid, "invalid_utf8",
					"%s is not valid UTF-8 (at byte %d); JSON text must be UTF-8", path(stack), at+int64(off))
			}
		}
		value()
	}
}

// badText reports whether span (one string token, with the separators before it) is valid UTF-8
// without escaped lone surrogates, and if not, the offset in span of the first bad byte or escape.
func badText(span []byte) (int, bool) {
	if !utf8.Valid(span) {
		for i := 0; i < len(span); {
			r, n := utf8.DecodeRune(span[i:])
			if r == utf8.RuneError && n == 1 {
				return i, false
			}
			i += n
		}
	}
	i := bytes.IndexByte(span, '"')
	if i < 0 {
		return 0, true
	}
	for i++; i < len(span); i++ {
		if span[i] != '\\' {
			continue
		}
		if i+1 >= len(span) || span[i+1] != 'u' {
			i++ // a two-byte escape such as \" or \\
			continue
		}
		c, ok := hex4(span, i+2)
		switch {
		case !ok:
		case c >= 0xDC00 && c <= 0xDFFF:
			return i, false // a low surrogate with no high one before it
		case c >= 0xD800 && c <= 0xDBFF:
			lo, ok := -1, false
			if i+7 < len(span) && span[i+6] == '\\' && span[i+7] == 'u' {
				lo, ok = hex4(span, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return i, false
			}
			i += 6 // the pair's low half is consumed with it
		}
		i += 5
	}
	return 0, true
}

func hex4(b []byte, at int) (int, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return int(v), err == nil
}

// foldKey maps a key to one representative of its case-folding class, so that two keys compare equal
// exactly when bytes.EqualFold (the decoder's field matching) says so.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// shortKey keeps a path element readable however long the agent made its key.
func shortKey(k string) string {
	if utf8.RuneCountInString(k) <= 64 {
		return k
	}
	return string([]rune(k)[:63]) + "…"
}
