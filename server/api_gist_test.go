package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
)

// Secrets an agent might paste into a handoff; none may reach a channel's gist or the model.
var gistCanaries = []string{
	"AKIAQWERTYUIOPASDFGH",
	"ghp_Zx9Qw8Ev7Rt6Yu5Io4Pa3Sd2Fg1Hj0KlZxCv",
	"sk_live_51Hq2CANARYdQ9xZ7vB3nM4kL8pW2sR6tY",
	"Ca9nAryPassw0rdX",
}

func gistRequest() client.CreateRequest {
	return client.CreateRequest{Action: "db.migrate",
		Title:   "rotate key " + gistCanaries[0] + " on prod",
		Summary: "uses token " + gistCanaries[1] + " and postgres://admin:" + gistCanaries[3] + "@db.internal/app",
		Payload: &client.Payload{Kind: "command", Content: "STRIPE_KEY=" + gistCanaries[2] + " ./migrate --token " + gistCanaries[1]},
	}
}

func TestGistIsRedacted(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect string) {
		in := start(t, dialect, nil)
		h := mustCreate(t, in.Agent(t), gistRequest())
		if h.Gist == "" || !strings.Contains(h.Gist, "[REDACTED:") || !strings.Contains(h.Gist, "db.migrate") {
			t.Fatalf("gist %q", h.Gist)
		}
		for _, c := range gistCanaries {
			if strings.Contains(h.Gist, c) {
				t.Errorf("gist carries %q: %s", c, h.Gist)
			}
		}
	})
}

// fakeModel is an OpenAI-compatible chat endpoint that records what it is sent.
type fakeModel struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (f *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer test-model-key" {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, b)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "c1", "object": "chat.completion", "created": 1, "model": "test",
		"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
			"message": map[string]string{"role": "assistant", "content": "Runs a database migration on production. It uses a live payment credential."}}},
	})
}

func (f *fakeModel) all() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Join(f.bodies, []byte("\n"))
}

// TestSummarizerSeesNoSecrets runs the optional model path end to end: the job refines the gist, and
// the model server receives none of the planted secrets.
func TestSummarizerSeesNoSecrets(t *testing.T) {
	t.Parallel()
	model := &fakeModel{}
	srv := httptest.NewServer(model)
	defer srv.Close()
	in := start(t, "sqlite", func(c *config.Config) {
		c.Summarizer.BaseURL = config.Secret(srv.URL + "/v1")
		c.Summarizer.APIKey = "test-model-key"
		c.Summarizer.Model = "test"
	})
	agent := in.Agent(t)
	h := mustCreate(t, agent, gistRequest())
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := agent.Get(ctxT(t), h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(got.Gist, "Runs a database migration") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the summarizer never refined the gist: %q", got.Gist)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sent := model.all()
	if len(sent) == 0 {
		t.Fatal("the model was never called")
	}
	for _, c := range gistCanaries {
		if bytes.Contains(sent, []byte(c)) {
			t.Errorf("the model received %q", c)
		}
	}
}
