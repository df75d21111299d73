package telegramtest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/internal/testhttp"
)

const token = "123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp"

// The fake must refuse what Telegram refuses, or tests against it prove nothing.
func TestFakeIsStrict(t *testing.T) {
	t.Parallel()
	fake := telegramtest.New(t, token)
	long := strings.Repeat("x", 63)
	for _, tc := range []struct {
		name, path, ctype, body string
		code                    int
	}{
		{"ok", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"<b>hi</b> &amp;"}`, 0},
		{"ok, keyboard", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":5,"text":"hi","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":"` + long + `:"}]]}}`, 0},
		{"wrong token", "/bot123:other/sendMessage", "application/json", `{"chat_id":"5","text":"hi"}`, 401},
		{"no token", "/sendMessage", "application/json", `{"chat_id":"5","text":"hi"}`, 401},
		{"form body", "/bot" + token + "/sendMessage", "application/x-www-form-urlencoded", `chat_id=5&text=hi`, 400},
		{"unknown field", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"hi","txet":"x"}`, 400},
		{"no chat", "/bot" + token + "/sendMessage", "application/json", `{"text":"hi"}`, 400},
		{"empty text", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":" "}`, 400},
		{"unescaped html", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"a < b","parse_mode":"HTML"}`, 400},
		{"unknown tag", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"<script>x</script>","parse_mode":"HTML"}`, 400},
		{"callback data 65 bytes", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"hi","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":"` + long + `:12"}]]}}`, 400},
		{"button with both", "/bot" + token + "/sendMessage", "application/json", `{"chat_id":"5","text":"hi","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":"a","url":"https://x"}]]}}`, 400},
		{"edit unknown message", "/bot" + token + "/editMessageText", "application/json", `{"chat_id":"5","message_id":1,"text":"x"}`, 400},
		{"answer unknown query", "/bot" + token + "/answerCallbackQuery", "application/json", `{"callback_query_id":"nope"}`, 400},
		{"http webhook", "/bot" + token + "/setWebhook", "application/json", `{"url":"http://x/hooks/telegram"}`, 400},
		{"unknown method", "/bot" + token + "/sendTelepathy", "application/json", `{}`, 404},
	} {
		resp, err := testhttp.Client.Post(fake.URL()+tc.path, tc.ctype, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			OK        bool `json:"ok"`
			ErrorCode int  `json:"error_code"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || r.OK != (tc.code == 0) || r.ErrorCode != tc.code || (tc.code != 0 && resp.StatusCode != tc.code) {
			t.Errorf("%s: ok=%v code=%d status=%d err=%v, want code %d", tc.name, r.OK, r.ErrorCode, resp.StatusCode, err, tc.code)
		}
	}
	if n := len(fake.Sent()); n != 2 {
		t.Fatalf("recorded %d messages, want the 2 accepted", n)
	}
}
