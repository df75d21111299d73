package audit

import "unicode/utf8"

// scanLeafEvent reads what the cross-check needs of a leaf in the shape Encode writes (compact JSON,
// no escapes in names or values) in less than half json/v2's time; verification reads every leaf.
// It accepts only a strict subset of JSON and says ok only when json/v2 would decode the same event
// without error (FuzzScanLeafEvent): no whitespace, no escapes, valid UTF-8, no name twice in an
// object, at most maxMembers members and maxDepth levels. For anything else ok is false and the
// caller decodes with json/v2, which has the last word.
func scanLeafEvent(data []byte) (e leafEvent, ok bool) {
	s := leafScanner{b: data}
	if len(data) == 0 || data[0] != '{' {
		return e, false
	}
	// A value read after s went bad is nonsense, but then the event is thrown away below.
	s.object(0, func(name []byte) bool {
		switch string(name) {
		case "type":
			e.Type = eventType(s.str())
		case "outcome":
			e.Outcome = string(s.str())
		case "subject":
			if s.i >= len(s.b) || s.b[s.i] != '{' {
				s.bad = true // null or another kind of value: json/v2 decides
				return true
			}
			s.object(1, func(name []byte) bool {
				switch string(name) {
				case "kind":
					e.Subject.Kind = subjectKind(s.str())
				case "id":
					e.Subject.ID = string(s.str())
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	})
	if s.bad || s.i != len(data) {
		return leafEvent{}, false
	}
	return e, true
}

// eventType and subjectKind return the known constants without allocating.
func eventType(v []byte) EventType {
	for _, t := range eventTypes {
		if string(t) == string(v) {
			return t
		}
	}
	return EventType(v)
}

func subjectKind(v []byte) string {
	if string(v) == "handoff" {
		return "handoff"
	}
	return string(v)
}

const (
	maxMembers = 16
	maxDepth   = 16
)

// leafScanner walks compact JSON; bad is set at the first byte outside the subset scanLeafEvent takes.
type leafScanner struct {
	b   []byte
	i   int
	bad bool
}

// str reads a string without escapes and returns its content.
func (s *leafScanner) str() []byte {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.bad = true
		return nil
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				s.bad = true
			}
			return v
		case c == '\\' || c < 0x20:
			s.bad = true
			return nil
		case c >= 0x80:
			ascii = false
		}
	}
	s.bad = true
	return nil
}

// value walks any value.
func (s *leafScanner) value(depth int) {
	if s.i >= len(s.b) || depth > maxDepth {
		s.bad = true
		return
	}
	switch c := s.b[s.i]; c {
	case '"':
		s.str()
	case '{':
		s.object(depth, nil)
	case '[':
		s.array(depth)
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	default:
		s.number()
	}
}

// object walks an object. member, when set, is called with each name and reads the value itself
// (true) or leaves it to be walked (false).
func (s *leafScanner) object(depth int, member func(name []byte) bool) {
	s.i++ // '{'
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return
	}
	var names [maxMembers][]byte
	for n := 0; ; n++ {
		name := s.str()
		if s.bad || n == maxMembers || s.i >= len(s.b) || s.b[s.i] != ':' {
			s.bad = true
			return
		}
		for _, o := range names[:n] {
			if string(o) == string(name) {
				s.bad = true
				return
			}
		}
		names[n] = name
		s.i++
		if member == nil || !member(name) {
			s.value(depth + 1)
		}
		if !s.next('}') {
			return
		}
	}
}

func (s *leafScanner) array(depth int) {
	s.i++ // '['
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return
	}
	for {
		s.value(depth + 1)
		if !s.next(']') {
			return
		}
	}
}

// next steps over the ',' before another element (true) or over end, which closes the list (false).
func (s *leafScanner) next(end byte) bool {
	switch {
	case s.bad || s.i >= len(s.b):
		s.bad = true
		return false
	case s.b[s.i] == end:
		s.i++
		return false
	case s.b[s.i] == ',':
		s.i++
		return true
	}
	s.bad = true
	return false
}

func (s *leafScanner) literal(w string) {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return
	}
	s.bad = true
}

// number walks a number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *leafScanner) number() {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		s.bad = true
		return
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); b[i-1] == '.' {
			s.bad = true
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			s.bad = true
			return
		}
		i = j
	}
	s.i = i
}

// digits is the index after the run of digits at i.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
