package plivo_test

import (
	"net/url"
	"testing"

	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

// The vectors of plivo-go's utils_test.go (TestValidateSignatureV3Pass1–4): Plivo's own answers.
var vectorParams = map[string]string{
	"Direction":       "outbound",
	"From":            "19792014278",
	"ALegUUID":        "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
	"CallStatus":      "in-progress",
	"BillRate":        "0.002",
	"ParentAuthID":    "MANWVLYTK4ZWU1YTY4QA",
	"To":              "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
	"ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
	"CallUUID":        "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
	"RequestUUID":     "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
	"SIP-H-To":        "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
	"SessionStart":    "2020-04-08 11:34:33.238707",
	"Event":           "StartApp",
}

const (
	vectorToken = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
	vectorNonce = "31627761595286130198"
	withQuery   = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d"
	noQuery     = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"
)

var vectors = []struct {
	name, uri, method, sig string
}{
	{"POST with query", withQuery, "POST", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="},
	{"GET with query", withQuery, "GET", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="},
	{"POST", noQuery, "POST", "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="},
	{"GET", noQuery, "GET", "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="},
}

func TestSignatureV3Vectors(t *testing.T) {
	t.Parallel()
	form := url.Values{}
	for k, v := range vectorParams {
		form.Set(k, v)
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if got := plivo.SignatureV3(vectorToken, v.uri, v.method, vectorNonce, vectorParams); got != v.sig {
				t.Errorf("SignatureV3 = %s, want %s", got, v.sig)
			}
			if !plivo.ValidV3(vectorToken, v.uri, v.method, vectorNonce, v.sig, vectorParams) {
				t.Error("ValidV3 refused Plivo's own signature")
			}
			// Several signatures, the right one anywhere in the list, as Plivo sends them.
			if !plivo.ValidV3(vectorToken, v.uri, v.method, vectorNonce, "bm9wZQ==,"+v.sig, vectorParams) {
				t.Error("ValidV3 refused a list holding the right signature")
			}
			if v.method == "POST" {
				// The driver's signer is a second implementation: it must agree with Plivo too.
				if got := plivotest.Sign(vectorToken, v.uri, vectorNonce, form); got != v.sig {
					t.Errorf("plivotest.Sign = %s, want %s", got, v.sig)
				}
			}
		})
	}
}

func TestSignatureV3Refuses(t *testing.T) {
	t.Parallel()
	sig := vectors[0].sig
	tampered := map[string]string{}
	for k, v := range vectorParams {
		tampered[k] = v
	}
	tampered["CallStatus"] = "completed"
	for _, tc := range []struct {
		name, token, uri, method, nonce, header string
		params                                  map[string]string
	}{
		{"another token", "x" + vectorToken[1:], withQuery, "POST", vectorNonce, sig, vectorParams},
		{"another nonce", vectorToken, withQuery, "POST", vectorNonce + "1", sig, vectorParams},
		{"no nonce", vectorToken, withQuery, "POST", "", sig, vectorParams},
		{"another query", vectorToken, withQuery + "&e=f", "POST", vectorNonce, sig, vectorParams},
		{"another host", vectorToken, "https://evil.example.com/api/v1/validate_signature03.xml/?a=b&c=d", "POST", vectorNonce, sig, vectorParams},
		{"tampered param", vectorToken, withQuery, "POST", vectorNonce, sig, tampered},
		{"GET's signature on POST", vectorToken, withQuery, "POST", vectorNonce, vectors[1].sig, vectorParams},
		{"empty header", vectorToken, withQuery, "POST", vectorNonce, "", vectorParams},
		{"only commas", vectorToken, withQuery, "POST", vectorNonce, ",,", vectorParams},
		{"prefix of it", vectorToken, withQuery, "POST", vectorNonce, sig[:20], vectorParams},
		{"unparsable URL", vectorToken, "://x", "POST", vectorNonce, sig, vectorParams},
	} {
		if plivo.ValidV3(tc.token, tc.uri, tc.method, tc.nonce, tc.header, tc.params) {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
