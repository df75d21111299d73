package telnyx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/voice"
)

// maxReply bounds an API reply we read; real ones are a few KiB.
const maxReply = 1 << 20

// commandRetries is how often a call command is repeated after a 429 or 5xx. Commands carry a
// command_id, so Telnyx runs a repeated one once; sends (a text, a dial) are never repeated here:
// the engine fails over to the next provider instead of risking a second text or call.
const commandRetries = 2

// APIError is a refusal from the Telnyx API. Detail is Telnyx's own text with any phone number in it
// masked; it never carries the API key.
type APIError struct {
	Op     string
	Status int
	// Code and Title are from the first entry of the reply's errors list, when it had one.
	Code, Title, Detail string
	// RetryAfter is set on 429 when Telnyx said how long to wait.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("telnyx: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Title != "" {
		s += " " + e.Title
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Temporary reports whether trying again later may work (rate limited, Telnyx failing).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

var numberRE = lazyregexp.New(`\+?[0-9][0-9 ().-]{5,20}[0-9]`)

// maskNumbers masks whatever looks like a phone number in provider text, which may quote the
// destination ("+14155550123 is not a valid number").
func maskNumbers(s string) string {
	s = numberRE.ReplaceAllStringFunc(s, func(m string) string {
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, m)
		if len(d) < 7 {
			return m
		}
		return voice.MaskPhone("+" + d)
	})
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

type errorReply struct {
	Errors []struct {
		Code   string `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// call POSTs body as JSON to path and decodes the reply into out (when not nil). retry repeats a
// rate-limited or failed request (only for idempotent commands).
func (p *Provider) call(ctx context.Context, op, path string, body, out any, retry bool) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("telnyx: %s: encode: %w", op, err)
	}
	for attempt := 0; ; attempt++ {
		err := p.once(ctx, op, path, raw, out)
		var ae *APIError
		if !retry || !errors.As(err, &ae) || !ae.Temporary() || attempt >= commandRetries {
			return err
		}
		d := ae.RetryAfter
		if d <= 0 || d > 2*time.Second {
			d = time.Duration(attempt+1) * 250 * time.Millisecond
		}
		p.log.Debug("telnyx: retrying", "op", op, "status", ae.Status)
		if werr := p.wait(ctx, d); werr != nil {
			return err
		}
	}
}

func (p *Provider) once(ctx context.Context, op, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telnyx: %s: request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which holds a call id; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("telnyx: %s: post: %w", op, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("telnyx: %s: read reply: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Op: op, Status: resp.StatusCode}
		var er errorReply
		if json.Unmarshal(reply, &er) == nil && len(er.Errors) > 0 {
			ae.Code, ae.Title, ae.Detail = maskNumbers(er.Errors[0].Code), maskNumbers(er.Errors[0].Title), maskNumbers(er.Errors[0].Detail)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			return fmt.Errorf("telnyx: %s: HTTP %d with an unreadable reply", op, resp.StatusCode)
		}
	}
	return nil
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pathEscape puts a provider id into a path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
