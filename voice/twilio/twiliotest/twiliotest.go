// Package twiliotest is an in-process fake of the Twilio REST API (and SignalWire's compatible one),
// strict the way the service is, plus a driver that plays the provider's side of Ony's webhooks.
package twiliotest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is a text the fake accepted.
type Message struct {
	SID, To, From, Body, StatusCallback string
}

// Call is a call the fake accepted.
type Call struct {
	SID, To, From string
	// URL is the call document's URL (Url), absolute, as Ony published it.
	URL, Method               string
	StatusCallback            string
	StatusCallbackMethod      string
	StatusCallbackEvents      []string
	MachineDetection, Timeout string
}

// Server is the fake REST API of one account.
type Server struct {
	t          testing.TB
	sid, token string
	prefix     string
	srv        *httptest.Server
	mu         sync.Mutex
	messages   []Message
	calls      []Call
	failures   []int
	owned      map[string]bool
	n          int
}

// New starts a fake Twilio API for the account; it stops when the test ends. Give URL() to
// Config.APIURL.
func New(t testing.TB, accountSID, authToken string) *Server {
	return start(t, accountSID, authToken, "")
}

// NewSignalWire starts a fake SignalWire space: the same API under /api/laml. URL() includes it.
func NewSignalWire(t testing.TB, projectID, apiToken string) *Server {
	return start(t, projectID, apiToken, "/api/laml")
}

func start(t testing.TB, sid, token, prefix string) *Server {
	t.Helper()
	s := &Server{t: t, sid: sid, token: token, prefix: prefix}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base for Config.APIURL.
func (s *Server) URL() string { return s.srv.URL + s.prefix }

// Fail makes the next n requests answer status (500, 503, 429…) with an error body.
func (s *Server) Fail(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// OwnNumbers makes the account own only these numbers: a From that is not one of them is refused
// (21606), quoting it, as Twilio does. By default every number is the account's.
func (s *Server) OwnNumbers(numbers ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned = map[string]bool{}
	for _, n := range numbers {
		s.owned[n] = true
	}
}

// Messages is every text accepted, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Calls is every call accepted, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg, MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), Status: status})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.sid)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(s.token)) != 1 {
		refuse(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	base := s.prefix + "/2010-04-01/Accounts/" + s.sid + "/"
	what, ok := strings.CutPrefix(r.URL.Path, base)
	if !ok || (what != "Messages.json" && what != "Calls.json") {
		refuse(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method != http.MethodPost {
		refuse(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		refuse(w, http.StatusBadRequest, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		refuse(w, http.StatusBadRequest, 20001, "unreadable body")
		return
	}
	f, err := url.ParseQuery(string(raw))
	if err != nil {
		refuse(w, http.StatusBadRequest, 20001, "malformed form")
		return
	}
	s.mu.Lock()
	if len(s.failures) > 0 {
		st := s.failures[0]
		s.failures = s.failures[1:]
		s.mu.Unlock()
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			refuse(w, st, 20429, "Too Many Requests")
			return
		}
		refuse(w, st, 20500, "Internal Server Error")
		return
	}
	s.n++
	n := s.n
	owned := s.owned
	s.mu.Unlock()
	if from := f.Get("From"); owned != nil && e164.MatchString(from) && !owned[from] {
		refuse(w, http.StatusBadRequest, 21606, "The From phone number "+from+" is not a valid, SMS-capable inbound phone number or short code for your account.")
		return
	}
	if what == "Messages.json" {
		s.message(w, f, n)
	} else {
		s.call(w, f, n)
	}
}

// check refuses fields the endpoint does not know, repeated single fields and bad numbers.
func check(f url.Values, allowed map[string]bool, multi string) (code int, msg string) {
	for k, vs := range f {
		if !allowed[k] {
			return 20001, "Unknown parameter " + k
		}
		if len(vs) != 1 && k != multi {
			return 20001, "Parameter " + k + " given more than once"
		}
	}
	if !e164.MatchString(f.Get("To")) {
		return 21211, "The 'To' number " + f.Get("To") + " is not a valid phone number."
	}
	if !e164.MatchString(f.Get("From")) {
		return 21212, "The 'From' number " + f.Get("From") + " is not a valid phone number."
	}
	return 0, ""
}

func absolute(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

func (s *Server) message(w http.ResponseWriter, f url.Values, n int) {
	if code, msg := check(f, map[string]bool{"To": true, "From": true, "Body": true, "StatusCallback": true}, ""); code != 0 {
		refuse(w, http.StatusBadRequest, code, msg)
		return
	}
	if b := f.Get("Body"); b == "" || len([]rune(b)) > 1600 {
		refuse(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit")
		return
	}
	if cb := f.Get("StatusCallback"); f.Has("StatusCallback") && !absolute(cb) {
		refuse(w, http.StatusBadRequest, 21609, "Invalid StatusCallback")
		return
	}
	m := Message{SID: fmt.Sprintf("SM%032x", n), To: f.Get("To"), From: f.Get("From"), Body: f.Get("Body"), StatusCallback: f.Get("StatusCallback")}
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"sid": m.SID, "account_sid": s.sid, "to": m.To, "from": m.From, "body": m.Body, "status": "queued"})
}

var callEvents = map[string]bool{"initiated": true, "ringing": true, "answered": true, "completed": true}

func (s *Server) call(w http.ResponseWriter, f url.Values, n int) {
	allowed := map[string]bool{"To": true, "From": true, "Url": true, "Method": true, "StatusCallback": true,
		"StatusCallbackMethod": true, "StatusCallbackEvent": true, "MachineDetection": true, "Timeout": true}
	if code, msg := check(f, allowed, "StatusCallbackEvent"); code != 0 {
		refuse(w, http.StatusBadRequest, code, msg)
		return
	}
	if !absolute(f.Get("Url")) {
		refuse(w, http.StatusBadRequest, 21205, "Url parameter is required and must be an absolute URL")
		return
	}
	for _, k := range []string{"Method", "StatusCallbackMethod"} {
		if v := f.Get(k); f.Has(k) && v != "GET" && v != "POST" {
			refuse(w, http.StatusBadRequest, 20001, k+" must be GET or POST")
			return
		}
	}
	if f.Has("StatusCallback") && !absolute(f.Get("StatusCallback")) {
		refuse(w, http.StatusBadRequest, 21609, "Invalid StatusCallback")
		return
	}
	for _, e := range f["StatusCallbackEvent"] {
		if !callEvents[e] {
			refuse(w, http.StatusBadRequest, 21626, "Invalid StatusCallbackEvent "+e)
			return
		}
	}
	if md := f.Get("MachineDetection"); f.Has("MachineDetection") && md != "Enable" && md != "DetectMessageEnd" {
		refuse(w, http.StatusBadRequest, 21629, "Invalid MachineDetection")
		return
	}
	if t := f.Get("Timeout"); f.Has("Timeout") {
		if v, err := strconv.Atoi(t); err != nil || v < 1 || v > 600 {
			refuse(w, http.StatusBadRequest, 21216, "Timeout must be 1 to 600")
			return
		}
	}
	c := Call{SID: fmt.Sprintf("CA%032x", n), To: f.Get("To"), From: f.Get("From"), URL: f.Get("Url"), Method: f.Get("Method"),
		StatusCallback: f.Get("StatusCallback"), StatusCallbackMethod: f.Get("StatusCallbackMethod"),
		StatusCallbackEvents: f["StatusCallbackEvent"], MachineDetection: f.Get("MachineDetection"), Timeout: f.Get("Timeout")}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"sid": c.SID, "account_sid": s.sid, "to": c.To, "from": c.From, "status": "queued"})
}

// WaitMessages waits until at least n texts were accepted and returns them all.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		if m := s.Messages(); len(m) >= n {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("twiliotest: %d texts, waited for %d: %w", len(s.Messages()), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// WaitCalls waits until at least n calls were accepted and returns them all.
func (s *Server) WaitCalls(ctx context.Context, n int) ([]Call, error) {
	for {
		if c := s.Calls(); len(c) >= n {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return s.Calls(), fmt.Errorf("twiliotest: %d calls, waited for %d: %w", len(s.Calls()), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
