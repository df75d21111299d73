package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzRedact(f *testing.F) {
	for _, tc := range findCases() {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"password=[REDACTED:secret_assignment:0123456789ab]x",
		"[REDACTED:jwt:0123456789ab] " + ghTok,
		strings.Repeat("key=", 200) + ghTok,
		"\xff\xfe" + ghTok + "\x00",
		"-----BEGIN RSA PRIVATE KEY-----" + strings.Repeat("A", 100),
		"x%4" + strings.Repeat("%41", 50),
	} {
		f.Add(s)
	}
	r := Default()
	f.Fuzz(func(t *testing.T, in string) {
		fs := r.Find(testKey, in)
		out, rfs := r.Redact(testKey, in)
		if len(fs) != len(rfs) {
			t.Fatalf("Find and Redact disagree: %v vs %v", fs, rfs)
		}
		for i, fnd := range fs {
			if fnd.Start < 0 || fnd.End > len(in) || fnd.Start >= fnd.End || i > 0 && fnd.Start < fs[i-1].End {
				t.Fatalf("bad findings %v", fs)
			}
			// No reported secret survives outside the markers (short ones may recur as
			// parts of other words, which redaction does not chase).
			secret := in[fnd.Start:fnd.End]
			if len(secret) >= propagateMin {
				for _, part := range outsideMarkers(out) {
					if strings.Contains(part, secret) {
						t.Fatalf("secret %q survives in %q", secret, out)
					}
				}
			}
		}
		// Redacting again finds nothing new: the markers are all that is left.
		if again := r.Find(testKey, out); len(again) != 0 {
			t.Fatalf("output %q still has findings %s", out, describe(out, again))
		}
	})
}

// outsideMarkers splits s at the markers it holds.
func outsideMarkers(s string) []string {
	var parts []string
	at := 0
	for _, m := range markers(s) {
		parts = append(parts, s[at:m.start])
		at = m.end
	}
	return append(parts, s[at:])
}

func FuzzRedactJSON(f *testing.F) {
	f.Add(`{"password":"hunter22","n":[1,2,{"token":"` + ghTok + `"}],"s":"a\u0041\n"}`)
	f.Add(`["\ud83d\ude00", "\ud800", "x\\\"y", -1.5e-3, true, null]`)
	f.Add(`{"arguments":"{\"api_key\":\"Qp4Rt7Vw1Yz6Bc3D\"}","pin":1234,"password":12345}`)
	f.Add(`"just a string with postgres://u:p4ssw0rd@h/db"`)
	r := Default()
	f.Fuzz(func(t *testing.T, in string) {
		out, fs, err := r.RedactJSON(testKey, []byte(in))
		if !json.Valid([]byte(in)) {
			if err == nil {
				t.Fatalf("invalid input accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("valid input rejected: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		for _, fnd := range fs {
			if fnd.Start < 0 || fnd.End > len(in) || fnd.Start > fnd.End {
				t.Fatalf("bad finding %+v", fnd)
			}
		}
	})
}
