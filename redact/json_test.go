package redact

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRedactJSON(t *testing.T) {
	in := `{
  "tool": "http_request",
  "arguments": "{\"url\":\"https://api.x.io\",\"api_key\":\"Qp4Rt7Vw1Yz6Bc3D\"}",
  "headers": {"Authorization": "Bearer abcDEF123456ghiJKL789", "X-Request-Id": "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"},
  "credentials": {"user": "deploy", "secret": "short-but-real-9", "nested": ["Zx9vB2nM4kL6", {"note": "rotate soon"}]},
  "password": 12345678,
  "max_tokens": 4096,
  "token": "YOUR_API_KEY",
  "note": "see <b>docs</b> & ` + ghTok + `",
  "ok": true, "n": null
}`
	out, fs, err := Default().RedactJSON(testKey, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("invalid JSON out:\n%s", out)
	}
	for _, secret := range []string{"Qp4Rt7Vw1Yz6Bc3D", "abcDEF123456ghiJKL789", "short-but-real-9", "Zx9vB2nM4kL6", "12345678", ghTok, "rotate soon"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q survives:\n%s", secret, out)
		}
	}
	for _, kept := range []string{`"max_tokens": 4096`, `"token": "YOUR_API_KEY"`, `"user": "deploy"`, "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f", "see <b>docs</b> & ", `"ok": true, "n": null`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%q lost:\n%s", kept, out)
		}
	}
	// Same structure: same keys in the same order, same types except the redacted number.
	var a, b any
	json.Unmarshal([]byte(in), &a)
	json.Unmarshal(out, &b)
	if !reflect.DeepEqual(shape(a), shape(b)) {
		t.Errorf("structure changed:\n%v\n%v", shape(a), shape(b))
	}
	// Findings point into the input and never overlap.
	for i, f := range fs {
		if f.Start < 0 || f.End > len(in) || f.Start >= f.End || i > 0 && f.Start < fs[i-1].End {
			t.Errorf("bad finding %+v", f)
		}
	}
	if _, _, err := Default().RedactJSON(testKey, []byte(`{"a":`)); err != ErrInvalidJSON {
		t.Errorf("invalid input: err %v", err)
	}
}

// shape maps a decoded document to its keys and container types, numbers counted as strings.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = shape(e)
		}
		return l
	case float64, string:
		return "scalar"
	}
	return v
}

func TestRedactJSONFindingOffsets(t *testing.T) {
	in := `{"a":"x\u0041 ` + ghTok + `","b":"\n` + ghTok + `"}`
	out, fs, err := Default().RedactJSON(testKey, []byte(in))
	if err != nil || len(fs) != 2 {
		t.Fatalf("%v %v", fs, err)
	}
	for _, f := range fs {
		if got := in[f.Start:f.End]; got != ghTok {
			t.Errorf("finding covers %q", got)
		}
		if f.Fingerprint != Fingerprint(testKey, ghTok) {
			t.Error("fingerprint is not of the decoded secret")
		}
	}
	if strings.Contains(string(out), ghTok) || !strings.Contains(string(out), `"x\u0041 `) {
		t.Errorf("out %s", out)
	}
}

func TestRedactJSONUnchanged(t *testing.T) {
	in := []byte(" [1, 2.5e3, \"plain\", {\"k\": [true, false, null]}] ")
	out, fs, err := Default().RedactJSON(testKey, in)
	if err != nil || len(fs) != 0 || string(out) != string(in) {
		t.Errorf("%q %v %v", out, fs, err)
	}
}

func TestRedactJSONContext(t *testing.T) {
	in := `{"kty":"RSA","n":"AQAB","d":"Xk2Lm9Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0Mn2Pq4St6Uv8Wx0Yz2Ab4","e":"AQAB"}`
	out, fs, err := Default().RedactJSON(testKey, []byte(in))
	if err != nil || len(fs) != 1 || fs[0].Kind != KindPrivateKey || strings.Contains(string(out), "Xk2Lm9Qp4Rt7") || !json.Valid(out) {
		t.Errorf("%s %v %v", out, fs, err)
	}
}
