package plivo_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

var fuzzPaths = []string{"sms", "sms/status", "call", "call/gather", "call/hangup", "call/machine"}

// FuzzWebhooks drives every route with arbitrary bodies and queries that carry a valid signature, so
// they reach the parsers behind it: no panic, only the statuses a route answers, and Ony hears only
// well-formed answers.
func FuzzWebhooks(f *testing.F) {
	s := newSetup(f)
	handlers := map[string]http.Handler{}
	for _, ch := range []channel.Channel{s.sms, s.call} {
		for _, r := range ch.(channel.Receiver).Routes(s.host) {
			handlers[r.Path] = r.Handler
		}
	}
	public := strings.TrimSuffix(s.hooks, "/hooks/plivo")
	f.Add(uint8(0), "", []byte("From=351912345678&To=14155550100&Text=Y+1234&Type=sms&MessageUUID=m1"))
	f.Add(uint8(0), "", []byte("From=PLIVO&Text=n9999&MessageUUID=m2"))
	f.Add(uint8(0), "", []byte("From=%2B351912345678&Text=yes+0000&MessageUUID=m3&MessageUUID=m4"))
	f.Add(uint8(1), "", []byte("MessageUUID=m1&Status=delivered"))
	f.Add(uint8(1), "", []byte("MessageUUID=&Status=failed"))
	f.Add(uint8(2), "t="+token, []byte("CallUUID=c1&RequestUUID=r1&To=351912345678"))
	f.Add(uint8(2), "t="+token, []byte("Machine=true"))
	f.Add(uint8(3), "s=m0&t="+token, []byte("Digits=1"))
	f.Add(uint8(3), "s=t2&t="+token, []byte("Digits=123456"))
	f.Add(uint8(3), "s=m2&t="+token, []byte(""))
	f.Add(uint8(3), "s=%ff&t=", []byte("Digits=%00"))
	f.Add(uint8(4), "", []byte("RequestUUID=r1&CallStatus=completed&HangupCause=NORMAL_CLEARING&AnswerTime=x"))
	f.Add(uint8(4), "", []byte("ALegRequestUUID=r1&CallStatus=busy"))
	f.Add(uint8(5), "", []byte("RequestUUID=r1&CallUUID=3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36&Machine=true"))
	f.Add(uint8(5), "", []byte("RequestUUID=r1&CallUUID=../../x&Machine=true"))
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		path := fuzzPaths[int(route)%len(fuzzPaths)]
		if strings.ContainsAny(query, "# \t\r\n") {
			return // not a query a request line can carry
		}
		u := public + "/hooks/plivo/" + path
		if query != "" {
			u += "?" + query
		}
		params := map[string]string{}
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range form {
				params[k] = v[0]
			}
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/plivo/"+path, bytes.NewReader(body))
		req.URL.RawQuery = query
		nonce := plivotest.UUID()
		req.Header.Set("X-Plivo-Signature-V3", plivo.SignatureV3(authToken, u, http.MethodPost, nonce, params))
		req.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
		before := len(s.host.Answers())
		rec := httptest.NewRecorder()
		handlers[path].ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 403: // 401: a body that is no form cannot carry a signature
		default:
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		for _, a := range s.host.Answers()[before:] {
			switch a.Channel {
			case "sms":
				if len(a.Code) != 4 || a.Token != "" || (a.Choice != channel.ChoiceApprove && a.Choice != channel.ChoiceDeny) || !strings.HasPrefix(a.From, "+") {
					t.Fatalf("ill-formed SMS answer %+v", a)
				}
			case "call":
				if a.Token == "" || a.Code != "" || a.From != ana || (a.TOTP != "" && len(a.TOTP) != 6) {
					t.Fatalf("ill-formed call answer %+v", a)
				}
			default:
				t.Fatalf("answer on channel %q", a.Channel)
			}
		}
	})
}

// FuzzParseInbound: an accepted message has an id and a sender in E.164.
func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{"From=351912345678&To=14155550100&Text=Y+1234&MessageUUID=m1&Type=sms",
		"From=%2B1&MessageUUID=x", "From=0123456789&MessageUUID=x", "MessageUUID=x&From=", "From=12345678&Type=mms&MessageUUID=x", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		in, err := plivo.ParseInbound(form)
		if err != nil {
			return
		}
		if in.MessageUUID == "" || len(in.MessageUUID) > 64 || !strings.HasPrefix(in.From, "+") || len(in.From) < 8 || len(in.From) > 16 ||
			strings.Trim(in.From[1:], "0123456789") != "" {
			t.Fatalf("%q parsed as %+v", body, in)
		}
	})
}

// FuzzParseHangup: an accepted callback names its call, and says a state only for a known status.
func FuzzParseHangup(f *testing.F) {
	for _, s := range []string{"RequestUUID=r&CallStatus=completed&AnswerTime=2026", "ALegRequestUUID=r&CallStatus=BUSY",
		"RequestUUID=r&CallStatus=in-progress", "CallStatus=failed", "RequestUUID=r&CallStatus=x&HangupCause=NO_ANSWER&BillDuration=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		e, err := plivo.ParseHangup(form)
		if err != nil {
			return
		}
		if e.Ref == "" || len(e.Ref) > 64 || e.Status == "" {
			t.Fatalf("%q parsed as %+v", body, e)
		}
		if st, ok := e.State(); ok && st != "answered" && st != "no_answer" && st != "busy" && st != "failed" {
			t.Fatalf("state %q", st)
		}
	})
}

// FuzzGatherQuery: an accepted query has exactly one token and a known state shape.
func FuzzGatherQuery(f *testing.F) {
	for _, s := range []string{"t=" + token, "s=m0&t=" + token, "t=a&t=b", "s=zz&t=a", "s=t9&t=%41", "s=r&t=" + token, "s=rr&t=a", "t=", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		tok, state, err := plivo.GatherQuery(q)
		if err != nil {
			return
		}
		if tok == "" || len(tok) > 200 || (state != "" && state != "r" && (len(state) != 2 || state[1] < '0' || state[1] > '9')) {
			t.Fatalf("%q parsed as %q %q", q, tok, state)
		}
	})
}

// FuzzSignatureV3 checks the two signers against each other on any URL and form: they were
// written apart, so agreeing everywhere is evidence that both follow plivo-go.
func FuzzSignatureV3(f *testing.F) {
	f.Add(withQuery, "CallUUID=x&Digits=1")
	f.Add(noQuery, "a=1.&b=2.")
	f.Add("https://x.example/p?a=b&&c=&d=e%26", "z=&y=.")
	f.Add("https://x.example/p?", "")
	f.Fuzz(func(t *testing.T, u, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		if _, err := url.Parse(u); err != nil {
			return
		}
		params := map[string]string{}
		for k, v := range form {
			params[k] = v[0]
		}
		if a, b := plivo.SignatureV3(authToken, u, http.MethodPost, "1", params), plivotest.Sign(authToken, u, "1", form); a != b {
			t.Fatalf("signers disagree on %q %q", u, body)
		}
	})
}
