package twiliotest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "secret-token"
)

func post(t *testing.T, u, user, pass string, f url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestFakeIsStrict(t *testing.T) {
	t.Parallel()
	s := twiliotest.New(t, sid, token)
	msgs := s.URL() + "/2010-04-01/Accounts/" + sid + "/Messages.json"
	calls := s.URL() + "/2010-04-01/Accounts/" + sid + "/Calls.json"
	sms := url.Values{"To": {"+351912345678"}, "From": {"+15005550006"}, "Body": {"hi"}}
	call := url.Values{"To": {"+351912345678"}, "From": {"+15005550006"}, "Url": {"https://ony.example.com/hooks/twilio/call?t=x"},
		"StatusCallbackEvent": {"answered", "completed"}, "MachineDetection": {"Enable"}, "Timeout": {"30"}}
	with := func(v url.Values, k, val string) url.Values {
		out := url.Values{}
		for kk, vv := range v {
			out[kk] = vv
		}
		if val == "" {
			delete(out, k)
		} else {
			out.Set(k, val)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		url, pass string
		form      url.Values
		status    int
		code      float64
	}{
		{"wrong token", msgs, "nope", sms, 401, 20003},
		{"other account", s.URL() + "/2010-04-01/Accounts/ACother/Messages.json", token, sms, 404, 20404},
		{"unknown field", msgs, token, with(sms, "Bogus", "1"), 400, 20001},
		{"no body", msgs, token, with(sms, "Body", ""), 400, 21617},
		{"to not E.164", msgs, token, with(sms, "To", "912345678"), 400, 21211},
		{"relative callback", msgs, token, with(sms, "StatusCallback", "/hooks/x"), 400, 21609},
		{"call without Url", calls, token, with(call, "Url", ""), 400, 21205},
		{"bad event", calls, token, with(call, "StatusCallbackEvent", "hungup"), 400, 21626},
		{"bad timeout", calls, token, with(call, "Timeout", "601"), 400, 21216},
		{"bad detection", calls, token, with(call, "MachineDetection", "yes"), 400, 21629},
		{"sms ok", msgs, token, sms, 201, 0},
		{"call ok", calls, token, call, 201, 0},
	} {
		st, body := post(t, tc.url, sid, tc.pass, tc.form)
		if st != tc.status || (tc.code != 0 && body["code"] != tc.code) {
			t.Errorf("%s: %d %v", tc.name, st, body)
		}
	}
	if len(s.Messages()) != 1 || len(s.Calls()) != 1 || len(s.Calls()[0].StatusCallbackEvents) != 2 {
		t.Fatalf("recorded %+v %+v", s.Messages(), s.Calls())
	}
	s.Fail(1, 503)
	if st, _ := post(t, msgs, sid, token, sms); st != 503 {
		t.Fatalf("failure %d", st)
	}
	if st, _ := post(t, msgs, sid, token, sms); st != 201 {
		t.Fatalf("after the failure %d", st)
	}
}

func TestParseTwiMLIsStrict(t *testing.T) {
	t.Parallel()
	for doc, ok := range map[string]bool{
		`<Response><Gather numDigits="1" action="https://a/x"><Say>hi</Say></Gather><Hangup/></Response>`: true,
		`<Response><Say>a</Say><Hangup/></Response>`:                                                      true,
		`<Response><Hangup/><Say>a</Say></Response>`:                                                      false,
		`<Response><Gather numDigits="1" action="/x"></Gather></Response>`:                                false,
		`<Response><Gather action="https://a/x"></Gather></Response>`:                                     false,
		`<Response><Play>x</Play></Response>`:                                                             false,
		`<Reply/>`:                                                                                        false,
		`<Response>`:                                                                                      false,
	} {
		if _, err := twiliotest.ParseTwiML([]byte(doc)); (err == nil) != ok {
			t.Errorf("%s: err %v", doc, err)
		}
	}
}
