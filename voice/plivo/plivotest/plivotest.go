// Package plivotest is an in-process fake of Plivo's REST API, strict the way Plivo is (Basic auth,
// exact paths, JSON with the required fields), plus a driver that plays Plivo's side of Ony's webhooks.
package plivotest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// SMS is a message the fake accepted.
type SMS struct {
	UUID, Src, Dst, Text string
	// URL is the delivery report URL (and Method its method), empty when none was given.
	URL, Method string
}

// Call is a call the fake placed.
type Call struct {
	RequestUUID, CallUUID                            string
	From, To                                         string
	AnswerURL, AnswerMethod, HangupURL, HangupMethod string
	RingTimeout                                      int
	MachineDetection, MachineDetectionURL            string
}

// Server is the fake REST API of one account.
type Server struct {
	t                 testing.TB
	authID, authToken string
	srv               *httptest.Server

	mu       sync.Mutex
	sms      []SMS
	calls    []Call
	hangups  []string         // call uuids hung up through the API
	live     map[string]bool  // call uuids that may be hung up
	failures map[string][]int // resource ("Message", "Call") → statuses still to answer with
	requests map[string]int   // resource → requests seen, refused ones included
}

// New starts a fake for the account; it stops when the test ends.
func New(t testing.TB, authID, authToken string) *Server {
	t.Helper()
	s := &Server{t: t, authID: authID, authToken: authToken, live: map[string]bool{},
		failures: map[string][]int{}, requests: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base to configure (Config.APIURL).
func (s *Server) URL() string { return s.srv.URL }

// Fail makes the next n requests to resource ("Message" or "Call") answer status (500, 503, 429...).
func (s *Server) Fail(resource string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[resource] = append(s.failures[resource], status)
	}
}

// SMS is every message accepted, in order.
func (s *Server) SMS() []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMS(nil), s.sms...)
}

// Calls is every call placed, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// HungUp is the call uuids hung up through the API, in order.
func (s *Server) HungUp() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hangups...)
}

// Requests is how many requests resource got, refused ones included.
func (s *Server) Requests(resource string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[resource]
}

var (
	numberRE = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)
	pathRE   = regexp.MustCompile(`^/v1/Account/([^/]+)/(Message|Call)/(?:([0-9a-f-]{36})/)?$`)
)

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"api_id": UUID(), "error": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		refuse(w, http.StatusNotFound, "not found")
		return
	}
	resource, id := m[2], m[3]
	s.mu.Lock()
	s.requests[resource]++
	s.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.authID || pass != s.authToken || m[1] != s.authID {
		refuse(w, http.StatusUnauthorized, "authentication failed")
		return
	}
	s.mu.Lock()
	if f := s.failures[resource]; len(f) > 0 {
		s.failures[resource] = f[1:]
		s.mu.Unlock()
		refuse(w, f[0], "the fake was told to fail")
		return
	}
	s.mu.Unlock()
	switch {
	case r.Method == http.MethodDelete && resource == "Call" && id != "":
		s.hangup(w, id)
	case r.Method != http.MethodPost || id != "":
		refuse(w, http.StatusMethodNotAllowed, "method not allowed")
	default:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			refuse(w, http.StatusBadRequest, "content type must be application/json")
			return
		}
		var body map[string]any
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		if err := dec.Decode(&body); err != nil {
			refuse(w, http.StatusBadRequest, "invalid JSON")
			return
		}
		fields := map[string]string{}
		for k, v := range body {
			// As plivo-go types them: durations are numbers, everything else strings.
			if contains(numeric, k) {
				n, ok := v.(float64)
				if !ok || n != float64(int(n)) {
					refuse(w, http.StatusBadRequest, k+" must be an integer")
					return
				}
				fields[k] = strconv.Itoa(int(n))
				continue
			}
			str, ok := v.(string)
			if !ok {
				refuse(w, http.StatusBadRequest, k+" must be a string")
				return
			}
			fields[k] = str
		}
		if resource == "Message" {
			s.message(w, fields)
		} else {
			s.call(w, fields)
		}
	}
}

var numeric = []string{"ring_timeout", "time_limit", "machine_detection_time"}

func check(fields map[string]string, allowed, required []string) string {
	for k := range fields {
		if !contains(allowed, k) {
			return "unknown parameter " + k
		}
	}
	for _, k := range required {
		if strings.TrimSpace(fields[k]) == "" {
			return k + " is required"
		}
	}
	return ""
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func absURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func (s *Server) message(w http.ResponseWriter, f map[string]string) {
	if msg := check(f, []string{"src", "dst", "text", "url", "method", "type"}, []string{"src", "dst", "text"}); msg != "" {
		refuse(w, http.StatusBadRequest, msg)
		return
	}
	switch {
	case !numberRE.MatchString(f["src"]) || !numberRE.MatchString(f["dst"]):
		refuse(w, http.StatusBadRequest, "src and dst must be phone numbers")
		return
	case f["url"] != "" && !absURL(f["url"]):
		refuse(w, http.StatusBadRequest, "url must be an absolute URL")
		return
	case f["method"] != "" && f["method"] != "POST" && f["method"] != "GET":
		refuse(w, http.StatusBadRequest, "method must be GET or POST")
		return
	case len([]rune(f["text"])) > 1600:
		refuse(w, http.StatusBadRequest, "text is longer than 1600 characters")
		return
	}
	m := SMS{UUID: UUID(), Src: f["src"], Dst: f["dst"], Text: f["text"], URL: f["url"], Method: f["method"]}
	s.mu.Lock()
	s.sms = append(s.sms, m)
	s.mu.Unlock()
	reply(w, http.StatusAccepted, map[string]any{"api_id": UUID(), "message": "message(s) queued", "message_uuid": []string{m.UUID}})
}

func (s *Server) call(w http.ResponseWriter, f map[string]string) {
	allowed := []string{"from", "to", "answer_url", "answer_method", "hangup_url", "hangup_method", "ring_timeout",
		"machine_detection", "machine_detection_url", "machine_detection_method", "time_limit", "caller_name"}
	if msg := check(f, allowed, []string{"from", "to", "answer_url"}); msg != "" {
		refuse(w, http.StatusBadRequest, msg)
		return
	}
	rt := 0
	if v := f["ring_timeout"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 120 {
			refuse(w, http.StatusBadRequest, "ring_timeout must be 1 to 120 seconds")
			return
		}
		rt = n
	}
	for _, k := range []string{"answer_url", "hangup_url", "machine_detection_url"} {
		if f[k] != "" && !absURL(f[k]) {
			refuse(w, http.StatusBadRequest, k+" must be an absolute URL")
			return
		}
	}
	for _, k := range []string{"answer_method", "hangup_method", "machine_detection_method"} {
		if f[k] != "" && f[k] != "POST" && f[k] != "GET" {
			refuse(w, http.StatusBadRequest, k+" must be GET or POST")
			return
		}
	}
	switch {
	case !numberRE.MatchString(f["from"]) || !numberRE.MatchString(f["to"]):
		refuse(w, http.StatusBadRequest, "from and to must be phone numbers")
		return
	case f["machine_detection"] != "" && f["machine_detection"] != "true" && f["machine_detection"] != "hangup":
		refuse(w, http.StatusBadRequest, "machine_detection must be true or hangup")
		return
	}
	c := Call{RequestUUID: UUID(), CallUUID: UUID(), From: f["from"], To: f["to"], AnswerURL: f["answer_url"],
		AnswerMethod: f["answer_method"], HangupURL: f["hangup_url"], HangupMethod: f["hangup_method"], RingTimeout: rt,
		MachineDetection: f["machine_detection"], MachineDetectionURL: f["machine_detection_url"]}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.live[c.CallUUID] = true
	s.mu.Unlock()
	reply(w, http.StatusCreated, map[string]any{"api_id": UUID(), "message": "call fired", "request_uuid": c.RequestUUID})
}

func (s *Server) hangup(w http.ResponseWriter, id string) {
	s.mu.Lock()
	live := s.live[id]
	if live {
		delete(s.live, id)
		s.hangups = append(s.hangups, id)
	}
	s.mu.Unlock()
	if !live {
		refuse(w, http.StatusNotFound, "call not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// UUID is a random version-4 uuid, as Plivo names messages and calls.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// mustBody is the form encoded for a POST.
func mustBody(form url.Values) *bytes.Reader { return bytes.NewReader([]byte(form.Encode())) }
