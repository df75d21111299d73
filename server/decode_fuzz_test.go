package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ony-ai/ony/problem"
)

// FuzzDecodeCreate feeds arbitrary bytes to the agent-facing create decoder: it never panics, every
// failure is a typed problem with a stable code whose message does not quote the input, and every
// success round-trips through the service request without losing fields, came from UTF-8 text whose
// decoded strings hold U+FFFD only where the agent wrote one, has no object with a key twice, and
// has a zero timeout only where the agent left it out or sent null.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"action":"shell.exec","title":"t","payload":{"kind":"command","content":"rm -rf /"}}`,
		`{"action":"deploy","title":"t","risk":"low","timeout":"10m","labels":{"env":"prod"}}`,
		`{"action":"deploy","title":"t","risk":{"nested":[1,2,{"x":null}]},"timeout":600}`,
		`{"action":"x","title":"t","options":[{"id":"a","label":"A","approves":true},{"id":"b","label":"B"}]}`,
		`{"action":"x"} {"action":"y"}`, `[]`, `null`, `{"unknown":1}`, `{"timeout":"forever"}`, `{"timeout":-1}`,
		`{"title":"\u0000"}`, `{"action":"x","title":"t","callback_url":"https://a/b?c=d"}`, ``, `{`,
		`{"title":"a","title":"b"}`, `{"title":"a","TITLE":"b"}`, `{"labels":{"a":"1","\u0061":"2"}}`,
		`{"risk":{"x":[{"k":1,"k":2}]}}`, `{"title":"\ud800"}`, `{"title":"\udc00\ud800"}`,
		`{"title":"\ud83d\ude80"}`, `{"title":"\ufffd"}`, `{"timeout":"0"}`, `{"timeout":0}`, `{"timeout":null}`,
		`{"timeout":1e-300}`, `{"title":"\u202etxt.exe"}`, "{\"title\":\"\xff\"}", "{\"l\xffx\":1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeCreate(bytes.NewReader(data))
		if err != nil {
			p, ok := problem.As(err)
			if !ok {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if p.Code == "" || p.Kind != problem.Invalid && p.Kind != problem.TooLarge {
				t.Fatalf("bad problem %+v", p)
			}
			if len(data) > 16 && strings.Contains(p.Message, string(data)) {
				t.Fatalf("error message quotes the input: %q", p.Message)
			}
			return
		}
		req := b.Request()
		if req.Action != b.Action || req.Title != b.Title || len(req.Options) != len(b.Options) || len(req.Labels) != len(b.Labels) {
			t.Fatalf("request lost fields: %+v vs %+v", req, b)
		}
		if (b.Payload == nil) != (req.Payload == nil) {
			t.Fatal("payload presence changed")
		}
		// Whatever the agent sent as risk is gone: re-encoding the decoded body has no risk value.
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte(`"risk":{}`)) {
			t.Fatalf("risk survived decoding: %s", out)
		}
		if !utf8.Valid(data) {
			t.Fatal("accepted a body that is not UTF-8")
		}
		agentWroteFFFD := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		if bytes.ContainsRune(out, utf8.RuneError) && !agentWroteFFFD {
			t.Fatalf("decoded strings gained U+FFFD: %s", out)
		}
		if n, m := keyTokens(t, data), genericKeys(t, data); n != m {
			t.Fatalf("accepted a repeated key: %d keys written, %d distinct", n, m)
		}
		var tm struct{ Timeout json.RawMessage }
		if err := json.Unmarshal(data, &tm); err != nil {
			t.Fatal(err)
		}
		if b.Timeout == 0 && tm.Timeout != nil && string(tm.Timeout) != "null" {
			t.Fatalf("timeout %s read as the default", tm.Timeout)
		}
	})
}

// keyTokens counts the keys written in a JSON text, repeats included.
func keyTokens(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var objects []bool // per open container: is it an object, and is the next token a key
	var keys []bool
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				objects, keys = append(objects, d == '{'), append(keys, d == '{')
				continue
			}
			objects, keys = objects[:len(objects)-1], keys[:len(keys)-1]
		} else if len(objects) > 0 && objects[len(objects)-1] && keys[len(keys)-1] {
			n++
			keys[len(keys)-1] = false
			continue
		}
		if len(objects) > 0 && objects[len(objects)-1] {
			keys[len(keys)-1] = true
		}
	}
}

// genericKeys counts the distinct keys a generic decode keeps.
func genericKeys(t *testing.T, data []byte) int {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var count func(any) int
	count = func(v any) int {
		n := 0
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				n += 1 + count(e)
			}
		case []any:
			for _, e := range v {
				n += count(e)
			}
		}
		return n
	}
	return count(v)
}
