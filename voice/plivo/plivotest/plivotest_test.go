package plivotest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

const (
	id  = "MAODUZYTQ0Y2FMYJBLOW"
	tok = "YTk4ZTU2ZmMxZDY0MzNkZWI5ZGRiODQ3NzYzNzA5"
)

// The fake must refuse what Plivo refuses, or tests against it prove nothing.
func TestFakeIsStrict(t *testing.T) {
	t.Parallel()
	fake := plivotest.New(t, id, tok)
	msg, call := "/v1/Account/"+id+"/Message/", "/v1/Account/"+id+"/Call/"
	okCall := `{"from":"14155550100","to":"351912345678","answer_url":"https://o.example/hooks/plivo/call?t=x","ring_timeout":30,"machine_detection":"true"}`
	for _, tc := range []struct {
		name, method, path, user, pass, ctype, body string
		code                                        int
	}{
		{"sms ok", "POST", msg, id, tok, "application/json", `{"src":"14155550100","dst":"351912345678","text":"hi","url":"https://o.example/s","method":"POST"}`, 202},
		{"call ok", "POST", call, id, tok, "application/json", okCall, 201},
		{"wrong token", "POST", msg, id, "nope", "application/json", `{"src":"14155550100","dst":"351912345678","text":"hi"}`, 401},
		{"another account in the path", "POST", "/v1/Account/MAOTHERACCOUNT00000/Message/", id, tok, "application/json", `{"src":"1","dst":"2","text":"hi"}`, 401},
		{"no trailing slash", "POST", strings.TrimSuffix(msg, "/"), id, tok, "application/json", `{}`, 404},
		{"form body", "POST", msg, id, tok, "application/x-www-form-urlencoded", `src=1&dst=2&text=hi`, 400},
		{"unknown field", "POST", msg, id, tok, "application/json", `{"src":"14155550100","dst":"351912345678","text":"hi","txet":"x"}`, 400},
		{"no text", "POST", msg, id, tok, "application/json", `{"src":"14155550100","dst":"351912345678"}`, 400},
		{"dst not a number", "POST", msg, id, tok, "application/json", `{"src":"14155550100","dst":"ana","text":"hi"}`, 400},
		{"relative status url", "POST", msg, id, tok, "application/json", `{"src":"14155550100","dst":"351912345678","text":"hi","url":"/s"}`, 400},
		{"ring timeout as a string", "POST", call, id, tok, "application/json", strings.Replace(okCall, `:30`, `:"30"`, 1), 400},
		{"ring timeout too long", "POST", call, id, tok, "application/json", strings.Replace(okCall, `:30`, `:600`, 1), 400},
		{"src as a number", "POST", msg, id, tok, "application/json", `{"src":14155550100,"dst":"351912345678","text":"hi"}`, 400},
		{"machine detection word", "POST", call, id, tok, "application/json", strings.Replace(okCall, `"true"`, `"yes"`, 1), 400},
		{"no answer url", "POST", call, id, tok, "application/json", `{"from":"14155550100","to":"351912345678"}`, 400},
		{"GET a message", "GET", msg, id, tok, "", ``, 405},
		{"hang up an unknown call", "DELETE", call + "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36/", id, tok, "", ``, 404},
	} {
		req, err := http.NewRequest(tc.method, fake.URL()+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(tc.user, tc.pass)
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := testhttp.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	if len(fake.SMS()) != 1 || len(fake.Calls()) != 1 {
		t.Fatalf("recorded %d SMS, %d calls", len(fake.SMS()), len(fake.Calls()))
	}
	// A placed call can be hung up once.
	c := fake.Calls()[0]
	for i, want := range []int{204, 404} {
		req, _ := http.NewRequest("DELETE", fake.URL()+call+c.CallUUID+"/", nil)
		req.SetBasicAuth(id, tok)
		resp, err := testhttp.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("hangup %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
}

func TestFakeFails(t *testing.T) {
	t.Parallel()
	fake := plivotest.New(t, id, tok)
	fake.Fail("Message", 2, 429)
	for i, want := range []int{429, 429, 202} {
		req, _ := http.NewRequest("POST", fake.URL()+"/v1/Account/"+id+"/Message/", strings.NewReader(`{"src":"14155550100","dst":"351912345678","text":"hi"}`))
		req.SetBasicAuth(id, tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := testhttp.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	if fake.Requests("Message") != 3 {
		t.Fatalf("requests %d", fake.Requests("Message"))
	}
}

func TestParseDocumentIsStrict(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`<Other/>`,
		`<Response><Play>x</Play></Response>`,
		`<Response><Hangup/><Speak>late</Speak></Response>`,
		`<Response><GetDigits action="/relative" method="POST" numDigits="1"></GetDigits></Response>`,
		`<Response><GetDigits action="https://x/a" method="POST" numDigits="0"></GetDigits></Response>`,
		`<Response><Speak> </Speak></Response>`,
		`<Response><Message src="1" dst="351912345678" type="sms">x</Message></Response>`,
		`<Response><Speak>unclosed</Response>`,
		`<Response><Stream bidirectional="true">https://x/media</Stream></Response>`,
		`<Response><Stream bidirectional="yes">wss://x/media</Stream></Response>`,
		`<Response><Stream contentType="audio/mpeg">wss://x/media</Stream></Response>`,
		`<Response><Stream extraHeaders="t">wss://x/media</Stream></Response>`,
		`<Response><Stream extraHeaders="t=a=b">wss://x/media</Stream></Response>`,
		`<Response><Stream>wss://x/media</Stream><Stream>wss://x/media</Stream></Response>`,
		`<Response><Speak>Hi</Speak><Stream>wss://x/media</Stream></Response>`,
		`<Response><Stream>wss://x/media</Stream><Wait length="6"/></Response>`,
		`<Response><Stream bidirectional="true" audioTrack="both">wss://x/media</Stream></Response>`,
	} {
		if _, err := plivotest.ParseDocument([]byte(doc)); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
	d, err := plivotest.ParseDocument([]byte(`<?xml version="1.0"?><Response><GetDigits action="https://x/a?t=1&amp;s=m0" method="POST" numDigits="1"><Speak>Hi</Speak></GetDigits><Redirect method="POST">https://x/a?t=1&amp;s=m0</Redirect></Response>`))
	if err != nil || d.Gather == nil || d.Gather.Action != "https://x/a?t=1&s=m0" || d.Redirect != d.Gather.Action || len(d.Says) != 1 {
		t.Fatalf("%+v %v", d, err)
	}
	d, err = plivotest.ParseDocument([]byte(`<?xml version="1.0"?><Response><Wait length="6" silence="true" minSilence="1500"></Wait>` +
		`<Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000" extraHeaders="t=ony_dt_x,u=2">wss://x/hooks/plivo/media?r=1</Stream>` +
		`<Redirect method="POST">https://x/a?s=r&amp;t=1</Redirect></Response>`))
	if err != nil || d.Wait != 6 || d.Stream == nil || d.Stream.URL != "wss://x/hooks/plivo/media?r=1" || !d.Stream.Bidirectional ||
		!d.Stream.KeepCallAlive || d.Stream.ContentType != "audio/x-mulaw;rate=8000" || len(d.Stream.Params) != 2 ||
		d.Stream.Params["t"] != "ony_dt_x" || d.Stream.Params["u"] != "2" || d.Redirect != "https://x/a?s=r&t=1" {
		t.Fatalf("stream document %+v %v", d, err)
	}
}
