package plivo_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/plivo"
)

// mediaStub stands in for the voice agent's websocket handler: it records the reference each
// request's context carries.
type mediaStub struct {
	mu    sync.Mutex
	hosts int
	refs  []string
}

func (m *mediaStub) factory(channel.Host) http.Handler {
	m.mu.Lock()
	m.hosts++
	m.mu.Unlock()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.refs = append(m.refs, plivo.StreamRef(r.Context()))
		m.mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	})
}

func (m *mediaStub) Refs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.refs...)
}

func agentSetup(t *testing.T) (setup, *mediaStub) {
	t.Helper()
	m := &mediaStub{}
	return newSetupWith(t, func(c *plivo.Config) { c.Media = m.factory }), m
}

// TestAgentDocument (issue 16): with the voice agent on, the answer document waits in silence (machine
// detection), then streams the call to the media websocket — bidirectional, µ-law 8 kHz, kept alive,
// the token in the extra headers and the call's request_uuid in the URL — then redirects to the keypad
// in the resume state. Nothing is said before the stream, and nothing is logged that names the call.
func TestAgentDocument(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c, doc := answered(t, s)
	if doc.Wait < 6 || len(doc.Says) != 0 || doc.Gather != nil || doc.Hangup {
		t.Fatalf("document %+v", doc)
	}
	st := doc.Stream
	wantURL := "ws" + strings.TrimPrefix(s.hooks, "http") + "/media?r=" + c.RequestUUID
	if st == nil || st.URL != wantURL || !st.Bidirectional || !st.KeepCallAlive || st.ContentType != "audio/x-mulaw;rate=8000" ||
		len(st.Params) != 1 || st.Params["t"] != token {
		t.Fatalf("stream %+v, want URL %s", st, wantURL)
	}
	want := s.hooks + "/call/gather?" + url.Values{"t": {token}, "s": {"r"}}.Encode()
	if doc.Redirect != want {
		t.Fatalf("redirect %q, want %q", doc.Redirect, want)
	}
	if got := s.host.Recalls(); len(got) != 1 || got[0] != token+"|call" {
		t.Fatalf("recalls %q", got)
	}
	checkClean(t, s.logs.String())
}

// TestAgentResume: the stream ended undecided (the model failed): Plivo follows the Redirect and the
// keypad says the script and menu, and still decides.
func TestAgentResume(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c, doc := answered(t, s)
	r := s.drv.Silence(c, doc)
	if r.Status != 200 || r.Doc == nil || r.Doc.Gather == nil || r.Doc.Stream != nil || len(r.Doc.Says) != 1 ||
		r.Doc.Says[0] != voice.Start(notification(ana)).Say {
		t.Fatalf("resume: %d %s", r.Status, r.Body)
	}
	if r = s.drv.Press(c, r.Doc, "2"); r.Doc == nil || !r.Doc.Hangup {
		t.Fatalf("after 2: %d %s", r.Status, r.Body)
	}
	want := channel.Answer{Token: token, Choice: channel.ChoiceDeny, Channel: "call", From: ana}
	if got := s.host.Answers(); len(got) != 1 || got[0] != want {
		t.Fatalf("answers %+v", got)
	}
	if got := s.host.Outcomes(); len(got) != 1 || got[0] != "plivo|"+c.RequestUUID+"|denied" {
		t.Fatalf("outcomes %q", got)
	}
}

// TestAgentResumeDecided: the agent decided, the stream closed, Plivo follows the Redirect: the
// keypad only says goodbye, and decides nothing.
func TestAgentResumeDecided(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c, doc := answered(t, s)
	s.host.mu.Lock()
	s.host.recall = func(string) (channel.Notification, error) {
		return channel.Notification{}, problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call.")
	}
	s.host.mu.Unlock()
	r := s.drv.Silence(c, doc)
	if r.Doc == nil || !r.Doc.Hangup || r.Doc.Gather != nil || len(r.Doc.Says) != 1 ||
		r.Doc.Says[0] != "This is Ony. This handoff was already approved by Ana via call. Goodbye." {
		t.Fatalf("resume after the decision: %d %s", r.Status, r.Body)
	}
	if len(s.host.Answers()) != 0 {
		t.Fatal("the resume decided")
	}
}

// TestAgentMachine: a machine that picked up is hung up on without a stream.
func TestAgentMachine(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c := placed(t, s)
	f := url.Values{"CallUUID": {c.CallUUID}, "RequestUUID": {c.RequestUUID}, "From": {c.From}, "To": {c.To},
		"CallStatus": {"in-progress"}, "Machine": {"true"}}
	r := s.drv.Post(c.AnswerURL, f)
	if r.Doc == nil || !r.Doc.Hangup || r.Doc.Stream != nil || len(r.Doc.Says) != 0 {
		t.Fatalf("machine: %d %s", r.Status, r.Body)
	}
}

// TestAgentMediaRoute: GET /hooks/plivo/media reaches the agent's handler (built once per host), with
// the request_uuid the URL names when it is one; anything else names none.
func TestAgentMediaRoute(t *testing.T) {
	t.Parallel()
	s, m := agentSetup(t)
	const ref = "6d3f2b1c-9a7e-4c2d-8b1a-0f9e8d7c6b5a"
	for _, q := range []string{"?r=" + ref, "", "?r=x%27%3B", "?r=" + strings.Repeat("a", 65)} {
		resp, err := testhttp.Client.Get(s.hooks + "/media" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Fatalf("GET media%s: %d", q, resp.StatusCode)
		}
	}
	if got := m.Refs(); len(got) != 4 || got[0] != ref || got[1] != "" || got[2] != "" || got[3] != "" {
		t.Fatalf("refs %q", got)
	}
	if m.hosts != 1 {
		t.Fatalf("the factory ran %d times", m.hosts)
	}
}

// TestKeypadOnlyHasNoMediaRoute: without the agent there is no websocket route, and the answer
// document is the keypad's.
func TestKeypadOnlyHasNoMediaRoute(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	resp, err := testhttp.Client.Get(s.hooks + "/media")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET media without the agent: %d", resp.StatusCode)
	}
	if _, doc := answered(t, s); doc.Stream != nil || doc.Gather == nil {
		t.Fatalf("keypad document %+v", doc)
	}
}
