package twilio_test

import (
	"net/url"
	"testing"

	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

// The vectors of PROTOCOLS.md (from Twilio's SDKs).
var (
	vectorURL    = "https://mycompany.com/myapp.php?foo=1&bar=2"
	vectorParams = url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	vectorBody    = []byte(`{"property": "value", "boolean": true}`)
	vectorBodyURL = vectorURL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
)

func TestSignatureVector(t *testing.T) {
	t.Parallel()
	const want = "vOEb5UThFn24KEfnOFLQY2AE5FY="
	if got := twilio.Signature("12345", vectorURL, vectorParams); got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
	if got := twiliotest.Sign("12345", vectorURL, vectorParams); got != want {
		t.Fatalf("the driver signs %s, want %s", got, want)
	}
	for name, tc := range map[string]struct {
		key, sig, url string
		params        url.Values
		ok            bool
	}{
		"as signed":          {"12345", want, vectorURL, vectorParams, true},
		"explicit :443":      {"12345", want, "https://mycompany.com:443/myapp.php?foo=1&bar=2", vectorParams, true},
		"other port":         {"12345", want, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", vectorParams, false},
		"wrong key":          {"54321", want, vectorURL, vectorParams, false},
		"no key":             {"", want, vectorURL, vectorParams, false},
		"no signature":       {"12345", "", vectorURL, vectorParams, false},
		"other URL":          {"12345", want, "https://mycompany.com/myapp.php?foo=1&bar=3", vectorParams, false},
		"param changed":      {"12345", want, vectorURL, with(vectorParams, "Digits", "1235"), false},
		"param added":        {"12345", want, vectorURL, with(vectorParams, "Extra", "x"), false},
		"truncated":          {"12345", want[:10], vectorURL, vectorParams, false},
		"http and :80 (own)": {"k", twilio.Signature("k", "http://a.example/x", nil), "http://a.example:80/x", nil, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := twilio.Valid(tc.key, tc.sig, tc.url, tc.params); got != tc.ok {
				t.Fatalf("Valid = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestSignatureBodyVector(t *testing.T) {
	t.Parallel()
	const want = "a9nBmqA0ju/hNViExpshrM61xv4="
	if got := twilio.Signature("12345", vectorBodyURL, nil); got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
	if !twilio.ValidBody("12345", want, vectorBodyURL, vectorBody) {
		t.Fatal("the vector does not validate")
	}
	if twilio.ValidBody("12345", want, vectorBodyURL, append(vectorBody, ' ')) {
		t.Fatal("a changed body validates")
	}
	if twilio.ValidBody("12345", twilio.Signature("12345", vectorURL, nil), vectorURL, vectorBody) {
		t.Fatal("a URL without bodySHA256 validates a body")
	}
}

func TestSignatureRepeatedKeysEachCount(t *testing.T) {
	t.Parallel()
	a := twilio.Signature("k", "https://a.example/x", url.Values{"E": {"answered", "completed"}})
	b := twilio.Signature("k", "https://a.example/x", url.Values{"E": {"answered"}})
	if a == b || a != twiliotest.Sign("k", "https://a.example/x", url.Values{"E": {"completed", "answered"}}) {
		t.Fatal("repeated keys are not each signed, in sorted order")
	}
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vs := range v {
		out[key] = append([]string(nil), vs...)
	}
	out.Set(k, val)
	return out
}
