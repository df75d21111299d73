package audit

import (
	"encoding/base64"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// encodedLeaves are leaves as Encode writes them: every event type, with every field of Details used
// on the first.
func encodedLeaves(t testing.TB) [][]byte {
	var out [][]byte
	for i, typ := range eventTypes {
		e := Event{V: 1, Type: typ, At: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
			Actor:   Actor{Kind: "user", ID: "0d5f3c1e-7a5b-4a53-9c43-8f1f0f7c2b1a", Role: "admin"},
			Subject: Subject{Kind: "handoff", ID: "h_1.2:3-4"}, Channel: "slack"}
		switch typ {
		case HandoffDecided, HandoffExpired, HandoffCancelled:
			e.Outcome = "approved"
		}
		if i == 0 {
			e.Details = &Details{Action: "deploy.prod-eu_1", Risk: "critical", Reasons: []string{"recursive_delete", "prod"},
				TitleHash: TitleHash("Deploy api"), Role: "viewer", SHA256: TitleHash("ladder: yaml"), Size: 42,
				Root: base64.StdEncoding.EncodeToString(make([]byte, 32)), Code: "bad_code", Option: "approve", Method: "code", Count: 7, Days: 30}
		}
		b, err := e.Encode(func(string) bool { return true })
		if err != nil {
			t.Fatalf("encode %s: %v", typ, err)
		}
		out = append(out, b)
	}
	return out
}

// TestScanLeafEventTakesEncoded: every leaf Encode writes takes the fast path, and reads as json/v2
// reads it. Without the first half a change to Encode's shape would quietly send every leaf to json/v2.
func TestScanLeafEventTakesEncoded(t *testing.T) {
	t.Parallel()
	for _, b := range encodedLeaves(t) {
		got, ok := scanLeafEvent(b)
		if !ok {
			t.Errorf("scanLeafEvent refused Encode's %s", b)
			continue
		}
		var want leafEvent
		if err := jsonv2.Unmarshal(b, &want); err != nil || got != want {
			t.Errorf("%s: scanned %+v, json/v2 %+v (%v)", b, got, want, err)
		}
	}
}

// TestScanLeafEventRefuses: what json/v2 refuses, or reads in a way the scanner does not, the scanner
// leaves to json/v2.
func TestScanLeafEventRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``, `null`, `[]`, `{`, `{"type":"a"`, `{"type":"a"} `, ` {"type":"a"}`, `{"type":"a"}{}`, `{"type" :"a"}`,
		`{"type":"a","type":"b"}`, `{"subject":{"id":"a","id":"b"}}`, `{"type":"\u0061"}`, `{"t\u0079pe":"a"}`,
		`{"type":null}`, `{"type":1}`, `{"subject":null}`, `{"subject":"handoff"}`, `{"subject":{"kind":1}}`,
		`{"outcome":true}`, "{\"type\":\"a\xff\"}", "{\"type\":\"a\x01\"}", `{"n":01}`, `{"n":1.}`, `{"n":-}`,
		`{"n":1e}`, `{"n":.5}`, `{"n":+1}`, `{"b":tru}`, `{"b":nul}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":{"b":1,}}`,
		`{"a":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}`,
		`{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1,"m":1,"n":1,"o":1,"p":1,"q":1}`,
	} {
		if e, ok := scanLeafEvent([]byte(in)); ok {
			t.Errorf("scanLeafEvent took %q as %+v", in, e)
		}
	}
}

// FuzzScanLeafEvent: whenever the scanner takes a leaf, json/v2 decodes it without error to the same
// event.
func FuzzScanLeafEvent(f *testing.F) {
	for _, b := range encodedLeaves(f) {
		f.Add(b)
	}
	for _, s := range []string{`{"TYPE":"handoff.created","Subject":{"kind":"handoff"}}`, `{"subject":{"kind":"handoff","id":"é"}}`,
		`{"a":[1,-0.5e+3,true,false,null,{"b":"c"},[]],"type":"x"}`, `{"type":"a","type":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanLeafEvent(data)
		if !ok {
			return
		}
		var want leafEvent
		if err := jsonv2.Unmarshal(data, &want); err != nil {
			t.Fatalf("scanLeafEvent took %q, which json/v2 refuses: %v", data, err)
		}
		if got != want {
			t.Fatalf("%q: scanned %+v, json/v2 %+v", data, got, want)
		}
	})
}

// BenchmarkDecodeLeafEvent: a handoff.created leaf through the scanner against json/v2 alone.
func BenchmarkDecodeLeafEvent(b *testing.B) {
	leaf := encodedLeaves(b)[0]
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeLeafEvent(leaf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsonv2", func(b *testing.B) {
		for b.Loop() {
			var e leafEvent
			if err := jsonv2.Unmarshal(leaf, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
