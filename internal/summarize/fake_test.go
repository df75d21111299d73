package summarize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeModel is an in-process OpenAI-compatible chat server. It checks every request strictly and
// records it whole (headers and raw body) before answering with reply.
type fakeModel struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string // "" means no Authorization header may be sent
	model  string

	mu       sync.Mutex
	requests []recorded
	reply    func(w http.ResponseWriter, r *http.Request, req chatRequest)
}

type recorded struct {
	header http.Header
	body   []byte
	req    chatRequest
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
}

func newFakeModel(t *testing.T, apiKey, model string) *fakeModel {
	t.Helper()
	f := &fakeModel{t: t, apiKey: apiKey, model: model}
	f.reply = answer("The agent wants to run a command. It is risky.")
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURL is what Config.BaseURL should be: the API root, under which the client adds /chat/completions.
func (f *fakeModel) baseURL() string { return f.srv.URL + "/v1" }

func (f *fakeModel) setReply(h func(w http.ResponseWriter, r *http.Request, req chatRequest)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = h
}

func (f *fakeModel) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake model: reading body: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{header: r.Header.Clone(), body: body})
	idx := len(f.requests) - 1
	reply := f.reply
	f.mu.Unlock()

	fail := func(format string, args ...any) {
		f.t.Errorf("fake model: "+format, args...)
		http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
	}
	if r.Method != http.MethodPost {
		fail("method %s, want POST", r.Method)
		return
	}
	if r.URL.Path != "/v1/chat/completions" {
		fail("path %q, want /v1/chat/completions", r.URL.Path)
		return
	}
	if r.URL.RawQuery != "" {
		fail("unexpected query %q", r.URL.RawQuery)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail("Content-Type %q, want application/json", ct)
		return
	}
	auth, hasAuth := r.Header["Authorization"]
	switch {
	case f.apiKey == "" && hasAuth:
		fail("Authorization header sent although no API key is configured")
		return
	case f.apiKey != "" && (len(auth) != 1 || auth[0] != "Bearer "+f.apiKey):
		fail("Authorization %q, want the configured bearer key", auth)
		return
	}
	var req chatRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		fail("body is not JSON: %v", err)
		return
	}
	if req.Model != f.model {
		fail("model %q, want %q", req.Model, f.model)
		return
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" {
		fail("messages must be exactly [system, user], got %d", len(req.Messages))
		return
	}
	for i, m := range req.Messages {
		if strings.TrimSpace(m.Content) == "" {
			fail("message %d is empty", i)
			return
		}
	}
	f.mu.Lock()
	f.requests[idx].req = req
	f.mu.Unlock()
	reply(w, r, req)
}

// answer replies with one choice whose content is text.
func answer(text string) func(http.ResponseWriter, *http.Request, chatRequest) {
	return func(w http.ResponseWriter, _ *http.Request, req chatRequest) {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "chatcmpl-test", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []map[string]any{{
				"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": text},
			}},
			"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
		})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
