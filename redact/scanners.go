package redact

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// maxPEM is how far after BEGIN an END line is looked for; a block without one within it is
// treated as truncated and its body is redacted as far as it goes.
const maxPEM = 64 << 10

// runPEM redacts whole "-----BEGIN … PRIVATE KEY-----" … "-----END … -----" blocks,
// including ones whose line breaks are escaped (\n inside a JSON string) or prefixed (a diff).
func runPEM(s *scan, d *detector, hits []int) {
	t := s.text
	done := 0
	nextEnd := -1 // offset of the next "-----END " at or after the last body searched, or len(t)
	for _, h := range hits {
		if h < done || !strings.HasPrefix(t[h:], "-----BEGIN ") {
			continue
		}
		p := h + len("-----BEGIN ")
		q := strings.Index(t[p:min(len(t), p+80)], "-----")
		if q < 0 {
			continue
		}
		if label := t[p : p+q]; !strings.Contains(label, "PRIVATE KEY") {
			continue
		}
		body := p + q + len("-----")
		end := -1
		if nextEnd < body {
			nextEnd = len(t)
			if i := strings.Index(t[body:], "-----END "); i >= 0 {
				nextEnd = body + i
			}
		}
		if nextEnd < len(t) && nextEnd-body <= maxPEM {
			e := nextEnd + len("-----END ")
			if j := strings.Index(t[e:min(len(t), e+80)], "-----"); j >= 0 {
				end = e + j + len("-----")
			}
		}
		if end < 0 {
			end = pemBody(t, body)
		}
		kind := d.kind
		if strings.Contains(lineHead(t, h), "private_key") && strings.Contains(s.lower(), "service_account") {
			kind = KindGCPServiceAccount
		}
		s.cands = append(s.cands, cand{start: h, end: end, prio: d.prio, kind: kind})
		done = end
	}
}

// pemBody returns where the body of a truncated PEM block starting at i ends.
func pemBody(t string, i int) int {
	end := i
	for i < len(t) {
		c := t[i]
		if c == '-' && strings.HasPrefix(t[i:], "-----") {
			break
		}
		if !(b64Byte[c] || c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\\' || c == ':' || c == ',' || c == '.') {
			break
		}
		i++
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			end = i
		}
	}
	return end
}

// b64Byte marks the characters of base64 in both alphabets.
var b64Byte = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['+'], t['/'], t['-'], t['_'] = true, true, true, true
	return t
}()

func identByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// runHighEntropy looks right after each secret-like name for a random-looking value: the
// name, then separators and at most two filler words ("is", "set to"), then a run of 20+
// base64 or hex characters with at least MinEntropy bits per character.
func runHighEntropy(s *scan, d *detector, hits []int) {
	done, lastRun := -1, -1
	for _, h := range hits {
		if h < done {
			continue
		}
		is, ie := s.ident(h)
		done = ie
		if ie-is > maxName || s.classify(is, ie) == nameNone {
			continue
		}
		// Many names before one run share its end: judge that run once.
		if sp, ok := s.valueAfter(ie); ok && sp.end != lastRun {
			lastRun = sp.end
			if s.randomRun(s.text[sp.start:sp.end], sp.start, sp.end) {
				s.add(sp, d)
			}
		}
	}
}

var glueWords = set("is", "was", "are", "be", "set", "to", "value", "as", "now", "of", "with", "using", "via", "=", "new")

func (s *scan) valueAfter(p int) (span, bool) {
	t := s.text
	limit := min(len(t), p+64)
	words := 0
	for p < limit {
		switch t[p] {
		case '\n':
			return span{}, false
		case ' ', '\t', '"', '\'', '`', ':', '=', '>', ',', '(', '[', '{', '|', '\\':
			p++
			continue
		}
		q := s.memoRun.next(t, p, notB64)
		if q == p {
			return span{}, false
		}
		q = pad(t, q) // '=' only as padding: "kid=…" is two runs
		run := t[p:q]
		if len(run) >= 20 {
			return span{p, q}, true
		}
		if words < 2 && glueWords[strings.ToLower(run)] {
			words++
			p = q
			continue
		}
		return span{}, false
	}
	return span{}, false
}

// digestPrefixes before a run mean it is a hash, not a secret.
var digestPrefixes = []string{"sha256:", "sha1:", "sha512:", "sha384:", "md5:", "h1:", "sha256-", "sha384-", "sha512-", "sha1-", "sha256=", "sha1="}

// randomRun judges a run t[p:q] found next to a secret-like name.
func (s *scan) randomRun(run string, p, q int) bool {
	t := s.text
	if len(run) > 4096 || isUUID(run) || !hasLetterAndDigit(run) || wordLike(run) || testVector(run) || sealed(s, run) {
		return false
	}
	// Part of a dotted name (host, file, package) rather than a value on its own.
	if q+1 < len(t) && t[q] == '.' && isAlnum(t[q+1]) || p > 0 && t[p-1] == '.' {
		return false
	}
	if strings.Contains(run, "/") {
		if run[0] == '/' || !mixedCase(run) {
			return false // a path
		}
	}
	// ssh public keys: "ssh-ed25519 AAAAC3Nza…", "ssh-rsa AAAAB3Nza…".
	if strings.HasPrefix(run, "AAAAB3Nza") || strings.HasPrefix(run, "AAAAC3Nza") || strings.HasPrefix(run, "AAAAE2VjZHNh") {
		return false
	}
	before := strings.ToLower(t[max(0, p-8):p])
	for _, dp := range digestPrefixes {
		if strings.HasSuffix(before, dp) {
			return false
		}
	}
	l := strings.ToLower(run)
	if strings.Contains(l, "xxxx") || strings.Contains(l, "example") {
		return false
	}
	return entropy(strings.TrimRight(run, "=")) >= s.r.minEntropy
}

func mixedCase(s string) bool {
	lo, up, dg := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		lo = lo || 'a' <= c && c <= 'z'
		up = up || 'A' <= c && c <= 'Z'
		dg = dg || '0' <= c && c <= '9'
	}
	return lo && up && dg
}

// minEncoded is the shortest base64 run worth decoding: 24 characters hold 18 bytes.
const minEncoded = 24

// runEncoded decodes base64 runs and %-encoded stretches and scans the decoded text with
// every detector; a finding there redacts the encoded run. Base64 wrapped over several lines
// of equal width (as base64(1) prints it) is decoded as one block.
func runEncoded(s *scan, d *detector, _ []int) {
	if s.depth >= maxDepth {
		return
	}
	s.base64Runs(d)
	s.percentRuns(d)
}

func (s *scan) base64Runs(d *detector) {
	t := s.text
	for i := 0; i < len(t); {
		if !b64Byte[t[i]] {
			i++
			continue
		}
		j := i
		for j < len(t) && b64Byte[t[j]] {
			j++
		}
		k := pad(t, j)
		if j-i < minEncoded || hexRun(t[i:j]) {
			// Too short, or hex digits and dashes: hashes and UUIDs, which are never
			// base64 of text.
			i = max(k, i+1)
			continue
		}
		parts := []string{t[i:k]}
		end := k
		if width := k - i; width >= 40 && width%4 == 0 && k == j {
			for p := k; ; {
				q := p
				if q < len(t) && t[q] == '\r' {
					q++
				}
				if q >= len(t) || t[q] != '\n' {
					break
				}
				q++
				for q < len(t) && (t[q] == ' ' || t[q] == '\t') {
					q++
				}
				r := q
				for r < len(t) && b64Byte[t[r]] {
					r++
				}
				r2 := pad(t, r)
				if r == q || r2-q > width {
					break
				}
				parts = append(parts, t[q:r2])
				end = r2
				if r2-q != width || r2 != r {
					break
				}
				p = r2
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		if dec, ok := decodeBase64(strings.Join(parts, "")); ok && printable(dec) {
			if cs, err := s.r.scan(s.ctx, dec, s.depth+1); err == nil && len(cs) > 0 {
				s.add(span{i, end}, d)
			}
		}
		i = end
	}
}

func hexRun(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '-') {
			return false
		}
	}
	return true
}

func pad(t string, j int) int {
	k := j
	for k < len(t) && k-j < 2 && t[k] == '=' {
		k++
	}
	return k
}

// decodeBase64 decodes either alphabet, padded or not.
func decodeBase64(s string) (string, bool) {
	s = strings.TrimRight(s, "=")
	url, std := strings.ContainsAny(s, "-_"), strings.ContainsAny(s, "+/")
	if url && std {
		return "", false
	}
	if len(s)%4 == 1 {
		s = s[:len(s)-1]
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) < 12 {
		return "", false
	}
	return string(b), true
}

// printable: valid UTF-8 with almost no control characters, i.e. text rather than bytes.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	bad := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			bad++
		}
	}
	return bad*50 <= len(s)
}

func urlByte(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`' && c != '\\'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentRuns decodes each stretch of URL characters holding %XX escapes; a secret in the
// decoded text redacts exactly the characters that encode it.
func (s *scan) percentRuns(d *detector) {
	t := s.text
	for at := 0; at < len(t); {
		i := strings.IndexByte(t[at:], '%')
		if i < 0 {
			return
		}
		i += at
		if i+2 >= len(t) {
			return
		}
		if _, ok := unhex(t[i+1]); !ok {
			at = i + 1
			continue
		}
		if _, ok := unhex(t[i+2]); !ok {
			at = i + 1
			continue
		}
		rs, re := i, i
		for rs > at && urlByte(t[rs-1]) {
			rs--
		}
		for re < len(t) && urlByte(t[re]) {
			re++
		}
		dec, off := percentDecode(t[rs:re])
		if s.ctx.Err() != nil {
			return
		}
		if cs, err := s.r.scan(s.ctx, dec, s.depth+1); err == nil {
			for _, c := range cs {
				s.add(span{rs + off[c.start], rs + off[c.end]}, d)
			}
		}
		at = re
	}
}

// percentDecode decodes %XX escapes (not '+'), returning for each decoded byte the offset of
// its source in s, plus one entry for the end.
func percentDecode(s string) (string, []int) {
	b := make([]byte, 0, len(s))
	off := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				off = append(off, i)
				i += 3
				continue
			}
		}
		b = append(b, s[i])
		off = append(off, i)
		i++
	}
	off = append(off, len(s))
	return string(b), off
}
