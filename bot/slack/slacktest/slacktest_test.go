package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/internal/testhttp"
)

const token = "xoxb-fake"

func call(t *testing.T, s *slacktest.Server, method, auth, ctype string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", ctype)
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

// TestFakeIsStrict checks that the fake refuses what Slack (or Ony's stricter rules) would, so a
// client passing against it is not passing by accident.
func TestFakeIsStrict(t *testing.T) {
	t.Parallel()
	const form = "application/x-www-form-urlencoded"
	good := url.Values{"channel": {"U012AB3CD"}, "text": {"hi"}}
	cases := []struct {
		name, method, auth, ctype string
		form                      url.Values
		want                      string
	}{
		{"no auth", "chat.postMessage", "", form, good, "invalid_auth"},
		{"wrong token", "chat.postMessage", "Bearer xoxb-other", form, good, "invalid_auth"},
		{"token in body", "chat.postMessage", "Bearer " + token, form, url.Values{"token": {token}, "channel": {"U012AB3CD"}, "text": {"hi"}}, "token_in_body"},
		{"json body", "chat.postMessage", "Bearer " + token, "application/json", good, "invalid_form_data"},
		{"no channel", "chat.postMessage", "Bearer " + token, form, url.Values{"text": {"hi"}}, "channel_not_found"},
		{"bad channel", "chat.postMessage", "Bearer " + token, form, url.Values{"channel": {"general"}, "text": {"hi"}}, "channel_not_found"},
		{"no text", "chat.postMessage", "Bearer " + token, form, url.Values{"channel": {"U012AB3CD"}}, "no_text"},
		{"bad blocks", "chat.postMessage", "Bearer " + token, form, url.Values{"channel": {"U012AB3CD"}, "blocks": {`[{"type":"section"}]`}}, "invalid_blocks"},
		{"long button", "chat.postMessage", "Bearer " + token, form, url.Values{"channel": {"U012AB3CD"}, "blocks": {
			`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"` + strings.Repeat("x", 76) + `"}}]}]`}}, "invalid_blocks"},
		{"duplicate action ids", "chat.postMessage", "Bearer " + token, form, url.Values{"channel": {"U012AB3CD"}, "blocks": {
			`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"x"}},{"type":"button","action_id":"a","text":{"type":"plain_text","text":"y"}}]}]`}}, "invalid_blocks"},
		{"update without ts", "chat.update", "Bearer " + token, form, url.Values{"channel": {"DU012AB3CD"}, "text": {"x"}}, "message_not_found"},
		{"update unknown message", "chat.update", "Bearer " + token, form, url.Values{"channel": {"DU012AB3CD"}, "ts": {"1.2"}, "text": {"x"}}, "message_not_found"},
		{"unknown email", "users.lookupByEmail", "Bearer " + token, form, url.Values{"email": {"x@y.example"}}, "users_not_found"},
		{"unknown method", "chat.delete", "Bearer " + token, form, good, "unknown_method"},
		{"socket mode off", "apps.connections.open", "Bearer xapp-1", "application/json", nil, "not_allowed_token_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := slacktest.New(t, token)
			if _, out := call(t, s, tc.method, tc.auth, tc.ctype, tc.form); out["ok"] != false || out["error"] != tc.want {
				t.Fatalf("answer %v, want error %q", out, tc.want)
			}
			if len(s.Posted()) != 0 || len(s.Updated()) != 0 {
				t.Fatal("recorded a refused call")
			}
		})
	}
}

func TestFakeRateLimits(t *testing.T) {
	t.Parallel()
	s := slacktest.New(t, token)
	s.RateLimit(1, 7)
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"chat.postMessage", strings.NewReader("channel=U012AB3CD&text=hi"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, out := call(t, s, "chat.postMessage", "Bearer "+token, "application/x-www-form-urlencoded",
		url.Values{"channel": {"#ops"}, "text": {"hi"}}); code != 200 || out["ok"] != true || !strings.HasPrefix(out["channel"].(string), "C") {
		t.Fatalf("after the limit: %d %v", code, out)
	}
}
