package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// discarded accepts any JSON value and keeps none of it: the agent's risk claim lands here so that it
// cannot be stored, echoed or used by construction.
type discarded struct{}

func (*discarded) UnmarshalJSON([]byte) error { return nil }

var (
	errBadTimeout  = problem.New(problem.Invalid, "invalid_timeout", `timeout must be a duration like "10m" or a number of seconds`)
	errZeroTimeout = problem.New(problem.Invalid, "invalid_timeout",
		"timeout must be at least %s; leave it out (or null) for the default", handoff.MinTimeout)
)

// flexDuration accepts "90s"/"10m" or a number of seconds. Zero is refused rather than read as "the
// default": the service's request uses zero for an absent timeout, and an agent that wrote 0 meant
// something else.
type flexDuration time.Duration

func (d *flexDuration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as if absent
	}
	var v time.Duration
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		p, err := time.ParseDuration(s)
		if err != nil {
			return errBadTimeout
		}
		v = p
	} else {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil || secs > 1e9 {
			return errBadTimeout
		}
		v = time.Duration(secs * float64(time.Second))
	}
	if v == 0 {
		return errZeroTimeout
	}
	*d = flexDuration(v)
	return nil
}

type payloadBody struct {
	Kind    string `json:"kind"`
	Content string `json:"content"`
}

// CreateBody is the JSON an agent posts to create a handoff.
type CreateBody struct {
	Action      string            `json:"action"`
	Title       string            `json:"title"`
	Summary     string            `json:"summary"`
	Options     []store.Option    `json:"options"`
	Payload     *payloadBody      `json:"payload"`
	Labels      map[string]string `json:"labels"`
	CallbackURL string            `json:"callback_url"`
	Timeout     flexDuration      `json:"timeout"`
	Risk        discarded         `json:"risk"`
}

// Request converts the body to the service's request.
func (b CreateBody) Request() handoff.CreateRequest {
	req := handoff.CreateRequest{Action: b.Action, Title: b.Title, Summary: b.Summary, Options: b.Options,
		Labels: b.Labels, CallbackURL: b.CallbackURL, Timeout: time.Duration(b.Timeout)}
	if b.Payload != nil {
		req.Payload = &handoff.Payload{Kind: b.Payload.Kind, Content: b.Payload.Content}
	}
	return req
}

// DecodeCreate parses a create request body strictly. It is the parser of untrusted agent input and
// has its own fuzz target.
func DecodeCreate(r io.Reader) (CreateBody, error) {
	var b CreateBody
	err := decodeStrict(r, &b)
	return b, err
}

func decodeStrict(r io.Reader, v any) error {
	// The decoder buffers the whole value anyway; holding the bytes lets checkTokens see what the
	// decoder forgives (invalid UTF-8, lone surrogates, repeated keys).
	raw, err := io.ReadAll(r)
	if err != nil {
		return jsonProblem(err)
	}
	if err := expectObject(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return problem.New(problem.Invalid, "invalid_json", "the body must be a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(problem.Invalid, "invalid_json", "the body must be a single JSON object")
	}
	return checkTokens(raw)
}

// expectObject refuses bodies that are not a JSON object (null, arrays, scalars) before decoding, since
// the decoder would accept null as an empty object.
func expectObject(raw []byte) error {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return nil
		}
		return problem.New(problem.Invalid, "invalid_json", "the body must be a JSON object")
	}
	return jsonProblem(io.EOF)
}

// jsonKind names a Go type the way a JSON user would.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// jsonProblem describes a decoding error by position and field, never by quoting the input.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	if p, ok := problem.As(err); ok {
		return p
	}
	switch {
	case errors.As(err, &tooBig):
		return problem.New(problem.TooLarge, "body_too_large", "the request body is over %d bytes", tooBig.Limit)
	case errors.As(err, &syn):
		return problem.New(problem.Invalid, "invalid_json", "the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return problem.New(problem.Invalid, "invalid_json", "the body must be a JSON object")
		}
		return problem.New(problem.Invalid, "invalid_json", "field %q must be %s", typ.Field, jsonKind(typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(problem.Invalid, "invalid_json", "the body is empty or cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(field) > 66 {
			field = field[:64] + "…\""
		}
		return problem.New(problem.Invalid, "unknown_field", "unknown field %s", field)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return problem.New(problem.Invalid, "invalid_json", "%s", strings.TrimPrefix(msg, "json: "))
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decodeStrict(http.MaxBytesReader(w, r.Body, limit), v)
}

func (s *Server) createHandoff(w http.ResponseWriter, r *http.Request) error {
	// JSON escaping can grow the payload up to sixfold; allow headroom over the payload limit and let the
	// service enforce the payload's own size exactly.
	b, err := DecodeCreate(http.MaxBytesReader(w, r.Body, s.cfg.MaxPayloadBytes*6+64<<10))
	if err != nil {
		return err
	}
	res, err := s.handoffs.Create(r.Context(), actorFrom(r.Context()), b.Request(), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/handoffs/"+res.Handoff.ID)
	writeJSON(w, status, handoff.NewView(res.Handoff, s.cfg.PublicURL))
	return nil
}

func (s *Server) getHandoff(w http.ResponseWriter, r *http.Request) error {
	h, err := s.handoffs.Get(r.Context(), actorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, handoff.NewView(h, s.cfg.PublicURL))
	return nil
}

type listView struct {
	Handoffs []handoff.View `json:"handoffs"`
}

func (s *Server) listHandoffs(w http.ResponseWriter, r *http.Request) error {
	f := store.HandoffFilter{Status: store.Status(r.URL.Query().Get("status"))}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return problem.New(problem.Invalid, "invalid_limit", "limit is 1 to 500")
		}
		f.Limit = n
	}
	hs, err := s.handoffs.List(r.Context(), actorFrom(r.Context()), f)
	if err != nil {
		return err
	}
	out := listView{Handoffs: make([]handoff.View, 0, len(hs))}
	for _, h := range hs {
		out.Handoffs = append(out.Handoffs, handoff.NewView(h, s.cfg.PublicURL))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// waitHandoff long-polls: it answers the moment the handoff is final, or with its pending state when
// the timeout (default 30 s, at most 60 s) passes. It authenticates the caller itself so that it can
// hold while the database is unreachable: the sign-in and the reads are retried until the timeout, so
// a wait begun during an outage still ends with a decision made after it.
func (s *Server) waitHandoff(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	timeout, terr := 30*time.Second, error(nil)
	if t := r.URL.Query().Get("timeout"); t != "" {
		var d time.Duration
		d, terr = parseWaitTimeout(t)
		timeout = min(d, handoff.MaxWait)
	}
	wait := s.authed(func(w http.ResponseWriter, r *http.Request) error {
		if terr != nil {
			return terr
		}
		h, err := s.handoffs.Wait(r.Context(), actorFrom(r.Context()), r.PathValue("id"), max(timeout-time.Since(start), time.Millisecond), s.drain)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, handoff.NewView(h, s.cfg.PublicURL))
		return nil
	})
	var backoff time.Duration
	for {
		err := wait(w, r)
		if terr != nil || !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		left := timeout - time.Since(start)
		if left <= 0 {
			return err
		}
		backoff = handoff.Backoff(backoff)
		select {
		case <-time.After(min(backoff, left)):
		case <-s.drain:
			return err
		case <-r.Context().Done():
			return err
		}
	}
}

func parseWaitTimeout(t string) (time.Duration, error) {
	d, err := time.ParseDuration(t)
	if err != nil {
		secs, err2 := strconv.Atoi(t)
		if err2 != nil {
			return 0, problem.New(problem.Invalid, "invalid_timeout", `timeout is a duration like "30s" or a number of seconds`)
		}
		d = time.Duration(secs) * time.Second
	}
	if d < time.Second {
		return 0, problem.New(problem.Invalid, "invalid_timeout", "timeout is at least 1s")
	}
	return d, nil
}

type decideBody struct {
	Option  string `json:"option"`
	Comment string `json:"comment"`
	TOTP    string `json:"totp"` // step-up code, for approvals the org requires it for
}

func (s *Server) decideHandoff(w http.ResponseWriter, r *http.Request) error {
	var b decideBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	if b.Option == "" {
		return problem.New(problem.Invalid, "invalid_option", "option is required")
	}
	h, err := s.handoffs.DecideStepUp(r.Context(), actorFrom(r.Context()), r.PathValue("id"), b.Option, b.Comment, "api", b.TOTP)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, handoff.NewView(h, s.cfg.PublicURL))
	return nil
}

type cancelBody struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelHandoff(w http.ResponseWriter, r *http.Request) error {
	var b cancelBody
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &b, 16<<10); err != nil {
			return err
		}
	}
	h, err := s.handoffs.Cancel(r.Context(), actorFrom(r.Context()), r.PathValue("id"), b.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, handoff.NewView(h, s.cfg.PublicURL))
	return nil
}
