package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ony-ai/ony/problem"
)

// FuzzDecodeCreate feeds arbitrary bytes to the agent-facing create decoder: it never panics, every
// failure is a typed problem with a stable code whose message does not quote the input, and every
// success round-trips through the service request without losing fields.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"action":"shell.exec","title":"t","payload":{"kind":"command","content":"rm -rf /"}}`,
		`{"action":"deploy","title":"t","risk":"low","timeout":"10m","labels":{"env":"prod"}}`,
		`{"action":"deploy","title":"t","risk":{"nested":[1,2,{"x":null}]},"timeout":600}`,
		`{"action":"x","title":"t","options":[{"id":"a","label":"A","approves":true},{"id":"b","label":"B"}]}`,
		`{"action":"x"} {"action":"y"}`, `[]`, `null`, `{"unknown":1}`, `{"timeout":"forever"}`, `{"timeout":-1}`,
		`{"title":"\u0000"}`, `{"action":"x","title":"t","callback_url":"https://a/b?c=d"}`, ``, `{`,
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
	})
}
