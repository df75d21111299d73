package telnyx

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
)

// Webhook headers: Telnyx signs timestamp + "|" + raw body with Ed25519.
const (
	SignatureHeader = "Telnyx-Signature-Ed25519"
	TimestampHeader = "Telnyx-Timestamp"
)

// Tolerance is how far a webhook's timestamp may be from our clock: older is a replay, newer a forgery
// or a broken clock.
const Tolerance = 5 * time.Minute

// maxBody bounds a webhook body; the server's own limit is 1 MiB and real events are a few KiB.
const maxBody = 1 << 20

// dedupeTTL is how long an event id is remembered: longer than the signature window, after which
// a replay is refused as stale anyway, and longer than Telnyx retries for.
const dedupeTTL = time.Hour

// Verify checks a webhook's Ed25519 signature over timestamp|body against pub, and that timestamp
// (Unix seconds) is within Tolerance of now.
func Verify(pub ed25519.PublicKey, signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return errors.New("telnyx: webhook: no signature")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts <= 0 {
		return errors.New("telnyx: webhook: malformed timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("telnyx: webhook: timestamp outside the replay window")
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("telnyx: webhook: malformed signature")
	}
	msg := make([]byte, 0, len(timestamp)+1+len(body))
	msg = append(append(append(msg, timestamp...), '|'), body...)
	if !ed25519.Verify(pub, msg, sig) {
		return errors.New("telnyx: webhook: bad signature")
	}
	return nil
}

// Event is one webhook as Telnyx posts it: {"data": {"id", "event_type", "occurred_at", "payload"}}.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"event_type"`
	OccurredAt string          `json:"occurred_at"`
	Payload    json.RawMessage `json:"payload"`
}

// ParseEvent decodes a webhook body; an event without an id, a type or a payload object is malformed.
func ParseEvent(body []byte) (Event, error) {
	var env struct {
		Data *Event `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("telnyx: event: %w", err)
	}
	if env.Data == nil || env.Data.ID == "" || env.Data.Type == "" {
		return Event{}, errors.New("telnyx: event: no data.id or data.event_type")
	}
	if p := strings.TrimSpace(string(env.Data.Payload)); !strings.HasPrefix(p, "{") {
		return Event{}, errors.New("telnyx: event: the payload is not an object")
	}
	return *env.Data, nil
}

// hook wraps an event handler: it reads the raw body, verifies the signature before anything is
// parsed (a failure answers 401 or 403 and does nothing else), parses the event, drops an event
// already handled (by key, on every replica) and answers 200 — what happened next is told to the
// person, and Telnyx redelivering would not change it.
func (p *Provider) hook(host channel.Host, key func(Event) string, handle func(ctx context.Context, ev Event)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		sig, ts := r.Header.Get(SignatureHeader), r.Header.Get(TimestampHeader)
		if sig == "" || ts == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if len(body) > maxBody {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := Verify(p.pub, sig, ts, body, p.clock()); err != nil {
			p.log.Warn("telnyx: webhook refused", "err", err)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		ev, err := ParseEvent(body)
		if err != nil {
			http.Error(w, "malformed event", http.StatusBadRequest)
			return
		}
		k := key(ev)
		if k == "" {
			k = ev.ID
		}
		fresh, err := host.Once(r.Context(), "telnyx:"+k, dedupeTTL)
		switch {
		case err != nil:
			// Acting without dedupe is safe: a decision token is single-use, a call command carries
			// the event id as its command_id, and a Report repeats a state.
			p.log.Warn("telnyx: dedupe unavailable, handling the event anyway")
		case !fresh:
			p.log.Debug("telnyx: duplicate event dropped", "event", ev.Type)
			w.WriteHeader(http.StatusOK)
			return
		}
		handle(r.Context(), ev)
		w.WriteHeader(http.StatusOK)
	})
}
