package slack_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/channel"
)

// offline refuses every outbound request: a fuzzed response_url must never reach the network.
type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("offline") }

func fuzzChannel(t testing.TB) *slack.Channel {
	ch, err := slack.New(slack.Config{BotToken: botToken, SigningSecret: secret,
		APIURL: "https://hooks.slack.com/api/", HTTPClient: &http.Client{Transport: offline{}}})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func route(ch *slack.Channel, host channel.Host, path string) http.Handler {
	for _, r := range ch.Routes(host) {
		if r.Path == path {
			return r.Handler
		}
	}
	return nil
}

// FuzzInteraction feeds the interactivity decoder arbitrary payloads that passed the signature
// check: it must answer 200 or 400, and decide only with a token, an option and who tapped.
func FuzzInteraction(f *testing.F) {
	for _, b := range [][]byte{
		slacktest.BlockActions(member, "ony_decide_1", "tok|approve", "https://hooks.slack.com/actions/T/1/x"),
		slacktest.BlockActions(member, "ony_console", "", ""),
		slacktest.BlockActions(member, "ony_decide_2", "tok", ""),
		slacktest.BlockActions("", "ony_decide_1", "|", ""),
	} {
		v, _ := url.ParseQuery(string(b))
		f.Add(v.Get("payload"))
	}
	f.Add(`{"type":"view_submission"}`)
	f.Add(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"ony_decide_1","value":"a|b"}]}`)
	f.Add(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"block_id":"b","action_id":"ony_decide_1","value":"a|b|c"}],"state":{"values":{}}}`)
	f.Add(`{"type":"block_actions","actions":null}`)
	f.Add(`[]`)
	f.Add(``)
	ch := fuzzChannel(f)
	f.Fuzz(func(t *testing.T, payload string) {
		host := newHost()
		h := route(ch, host, "interactions")
		body := []byte(url.Values{"payload": {payload}}.Encode())
		rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", rec.Code)
		}
		for _, a := range host.decided() {
			if a.Token == "" || a.Option == "" || a.From == "" || a.Channel != "slack" || a.Index != 0 || a.TOTP != "" {
				t.Fatalf("decided with %+v", a)
			}
			if !json.Valid([]byte(payload)) {
				t.Fatal("decided on a payload that is not JSON")
			}
		}
	})
}

// FuzzCommand feeds the slash-command route arbitrary signed bodies: it must answer 200 with an
// ephemeral JSON reply or 400, and link only for "link <code>" from a user.
func FuzzCommand(f *testing.F) {
	f.Add(slacktest.SlashCommand(member, "/ony", "link abcd-efgh-jkmn", "https://hooks.slack.com/commands/T/1/x"))
	f.Add(slacktest.SlashCommand(member, "/ony", "help", ""))
	f.Add(slacktest.SlashCommand(member, "/ony", "", ""))
	f.Add(slacktest.SlashCommand("", "/ony", "link x", ""))
	f.Add([]byte("user_id=U1&command=%2Fony&text=link%20%E2%80%A8x"))
	f.Add([]byte("user_id=%zz"))
	f.Add([]byte(""))
	ch := fuzzChannel(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		host := newHost()
		h := route(ch, host, "commands")
		rec := serve(h, slacktest.NewRequest("/hooks/slack/commands", secret, body))
		switch rec.Code {
		case http.StatusOK:
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got["response_type"] != "ephemeral" || got["text"] == "" {
				t.Fatalf("answer %q (%v)", rec.Body.String(), err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(host.linked()) != 0 {
				t.Fatal("linked on a refused request")
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
		for _, l := range host.linked() {
			if l[0] == "" || l[1] != "slack" || l[2] == "" || strings.ContainsAny(l[0], " \t\n") {
				t.Fatalf("linked %q", l)
			}
		}
	})
}
