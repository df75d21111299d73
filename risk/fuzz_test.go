package risk

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func FuzzDerive(f *testing.F) {
	for _, tc := range deriveCases() {
		var key, value string
		for k, v := range tc.in.Labels { // the cases carry at most one label
			key, value = k, v
		}
		f.Add(tc.in.Action, tc.in.PayloadKind, tc.in.Payload, key, value)
	}
	for _, s := range []string{
		"rm -rf " + strings.Repeat("-r -f ", 200) + "/",
		strings.Repeat("delete from t ", 300),
		strings.Repeat("DELETE FROM t\n+", 300) + "WHERE",
		"UPDATE t SET a = 'x' " + strings.Repeat("'", 500),
		"git push " + strings.Repeat("-f ", 100),
		"curl x |" + strings.Repeat(" |", 300) + " sh",
		"\u212aubectl delete pod x",
		"DROP \u017fCHEMA x; \xff\xfe invalid utf-8 \x00",
		"echo ok; rm -rf ~;;;\n\n\r\n",
		`replicas: "0"`,
		"chmod o+w,a+x f",
	} {
		f.Add("shell.exec", "command", s, "env", "prod")
	}

	e := Default()
	ids := map[string]Rule{}
	for _, r := range DefaultRules() {
		ids[r.ID] = r
	}
	f.Fuzz(func(t *testing.T, action, kind, payload, key, value string) {
		in := Input{Action: action, PayloadKind: kind, Payload: payload, Labels: map[string]string{key: value}}
		got := e.Derive(in)
		if !got.Level.Valid() {
			t.Fatalf("level %d out of range", got.Level)
		}
		for i, r := range got.Reasons {
			if !KnownReason(r) {
				t.Fatalf("unknown reason %q", r)
			}
			if slices.Contains(got.Reasons[:i], r) {
				t.Fatalf("reason %q repeated: %v", r, got.Reasons)
			}
		}
		for i, id := range got.Rules {
			if _, ok := ids[id]; !ok {
				t.Fatalf("unknown rule %q", id)
			}
			if slices.Contains(got.Rules[:i], id) {
				t.Fatalf("rule %q repeated", id)
			}
			if !slices.Contains(got.Reasons, ids[id].Reason) {
				t.Fatalf("rule %s fired without its reason: %+v", id, got)
			}
			if got.Level < ids[id].Level {
				t.Fatalf("rule %s fired but level is only %v", id, got.Level)
			}
		}
		if again := e.Derive(in); !reflect.DeepEqual(got, again) {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
		if plain := e.derive(in, false); !reflect.DeepEqual(got, plain) {
			t.Fatalf("prefilter changed the result: %+v, without it %+v", got, plain)
		}
	})
}
