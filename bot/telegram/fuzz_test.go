package telegram_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ony-ai/ony/bot/telegram"
)

// FuzzUpdate drives the webhook (decoder and dispatch) with arbitrary bodies that carry the right
// secret: it must never panic, answer 200 or 400, and hand Ony only well-formed answers.
func FuzzUpdate(f *testing.F) {
	s := newChannel(f, withSecret)
	f.Add([]byte(`{"update_id":1,"callback_query":{"id":"cb1","from":{"id":555},"data":"` + token + `:1"}}`))
	f.Add([]byte(`{"update_id":2,"callback_query":{"id":"cb2","from":{"id":555},"data":":1"}}`))
	f.Add([]byte(`{"update_id":3,"callback_query":{"id":"cb3","from":{"id":-5},"data":"a:1"}}`))
	f.Add([]byte(`{"update_id":4,"message":{"message_id":1,"from":{"id":555},"chat":{"id":555,"type":"private"},"text":"/start abcd-efgh"}}`))
	f.Add([]byte(`{"update_id":5,"message":{"message_id":1,"from":{"id":555},"chat":{"id":-100,"type":"group"},"text":"/link@ony_test_bot x"}}`))
	f.Add([]byte(`{"update_id":6,"message":{"message_id":1,"chat":{"id":555,"type":"private"},"text":"/start"}}`))
	f.Add([]byte(`{"update_id":7,"edited_message":{}}`))
	f.Add([]byte(`{"update_id":"8"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	host := &fakeHost{}
	h := s.ch.Routes(host)[0].Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(host.Answers())
		req := httptest.NewRequest(http.MethodPost, "/hooks/telegram", bytes.NewReader(body))
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d", rec.Code)
		}
		for _, a := range host.Answers()[before:] {
			id, err := strconv.ParseInt(a.From, 10, 64)
			if a.Channel != "telegram" || a.Token == "" || a.Option != "" || a.Index < 1 || a.Index > 99 || err != nil || id <= 0 {
				t.Fatalf("ill-formed answer %+v", a)
			}
		}
		for _, l := range host.Links() {
			if parts := strings.Split(l, "|"); parts[len(parts)-2] != "telegram" {
				t.Fatalf("link of kind %q", l)
			}
		}
	})
}

// FuzzCallbackData: whatever ParseCallbackData accepts is exactly what Notify would have written.
func FuzzCallbackData(f *testing.F) {
	for _, s := range []string{token + ":1", token + ":12", "a:0", "a:01", "a:+1", ":1", "a:", "a:b:2", "a:-1", strings.Repeat("x", 62) + ":1", strings.Repeat("x", 63) + ":1", "a:١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		tok, i, err := telegram.ParseCallbackData(data)
		if err != nil {
			return
		}
		if tok == "" || i < 1 || len(data) > 64 || tok+":"+strconv.Itoa(i) != data {
			t.Fatalf("%q parsed as %q, %d", data, tok, i)
		}
	})
}
