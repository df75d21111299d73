package twilio_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

var fourDigits = regexp.MustCompile(`^[0-9]{4}$`)

// FuzzWebhook posts arbitrary, correctly signed forms to every route with an arbitrary query: the
// routes must never panic, answer only 200, 204 or 400 (or 413), and hand Ony only well-formed
// answers and reports.
func FuzzWebhook(f *testing.F) {
	s := newSetup(f, twilio.Twilio)
	routes := []string{"sms", "sms/status", "call", "call/gather", "call/status"}
	f.Add(uint8(0), "", "MessageSid=SM1&From=%2B351912345678&Body=Y+1234")
	f.Add(uint8(0), "", "MessageSid=SM2&From=%2B351912345678&Body=n4821&Body=y1111")
	f.Add(uint8(0), "", "MessageSid=SM3&From=short&Body=Y+1234")
	f.Add(uint8(1), "", "MessageSid=SM1&MessageStatus=delivered")
	f.Add(uint8(1), "", "MessageStatus=failed")
	f.Add(uint8(2), "t="+token, "CallSid=CA1&To=%2B351912345678&AnsweredBy=human")
	f.Add(uint8(2), "t="+token, "CallSid=CA1&AnsweredBy=machine_start")
	f.Add(uint8(2), "t=other", "CallSid=CA1")
	f.Add(uint8(3), "t="+token+"&s=m0", "CallSid=CA1&To=%2B351912345678&Digits=1")
	f.Add(uint8(3), "t="+token+"&s=t2", "CallSid=CA1&To=%2B351912345678&Digits=123456")
	f.Add(uint8(3), "t="+token+"&s=x", "CallSid=CA1&Digits=")
	f.Add(uint8(3), "t="+token+"&s=", "CallSid=CA1&Digits=9")
	f.Add(uint8(4), "", "CallSid=CA1&CallStatus=completed&AnsweredBy=fax")
	f.Add(uint8(4), "bodySHA256=00", "{}")
	f.Add(uint8(0), "%zz", "%zz=1")
	f.Fuzz(func(t *testing.T, which uint8, query, body string) {
		if len(body) > 4096 || len(query) > 512 {
			return
		}
		route := routes[int(which)%len(routes)]
		u := s.hooks + "/" + route
		if query != "" {
			u += "?" + query
		}
		params, err := url.ParseQuery(body)
		if _, uerr := url.Parse(u); err != nil || uerr != nil || strings.ContainsAny(query, "# ") {
			return // not a request a provider could send; the signature check is fuzzed below
		}
		before, reports := len(s.host.Answers()), len(s.host.Reports())
		res := s.drv.Post(t, u, params)
		switch res.Status {
		case 200, 204, 400, 403, 413:
		default:
			t.Fatalf("%s: status %d", route, res.Status)
		}
		for _, a := range s.host.Answers()[before:] {
			switch a.Channel {
			case "sms":
				if a.Token != "" || !fourDigits.MatchString(a.Code) || (a.Choice != "approve" && a.Choice != "deny") || !strings.HasPrefix(a.From, "+") {
					t.Fatalf("ill-formed SMS answer %+v", a)
				}
			case "call":
				if a.Token != token || a.Code != "" || (a.Choice != "approve" && a.Choice != "deny") || (a.TOTP != "" && len(a.TOTP) != 6) {
					t.Fatalf("ill-formed call answer %+v", a)
				}
			default:
				t.Fatalf("answer on channel %q", a.Channel)
			}
		}
		for _, r := range s.host.Reports()[reports:] {
			if r.Provider != "twilio" || r.Ref == "" || r.State == "" {
				t.Fatalf("ill-formed report %+v", r)
			}
		}
	})
}

// FuzzSignature: what Signature signs, Valid accepts; anything else it refuses, and neither panics.
func FuzzSignature(f *testing.F) {
	f.Add("12345", vectorURL, "Digits=1234&CallSid=CA1234567890ABCDE", "vOEb5UThFn24KEfnOFLQY2AE5FY=")
	f.Add("k", "https://a.example:443/x?y=1", "A=1&A=2", "")
	f.Add("k", "http://[::1]:80/x", "", "x")
	f.Add("", "%%", "a=%zz", "")
	f.Fuzz(func(t *testing.T, key, rawURL, form, sig string) {
		params, _ := url.ParseQuery(form)
		good := twilio.Signature(key, rawURL, params)
		if good != twiliotest.Sign(key, rawURL, params) {
			t.Fatal("Ony and the driver disagree")
		}
		if key != "" && !twilio.Valid(key, good, rawURL, params) {
			t.Fatal("a good signature is refused")
		}
		if twilio.Valid(key+"x", good, rawURL, params) {
			t.Fatal("another key's signature is accepted")
		}
		more := url.Values{}
		for k, v := range params {
			more[k] = append([]string(nil), v...)
		}
		more.Add("ZZextra", "1")
		if twilio.Valid(key, good, rawURL, more) {
			t.Fatal("a signature is accepted with a param added")
		}
		_ = twilio.ValidBody(key, sig, rawURL, []byte(form))
	})
}
