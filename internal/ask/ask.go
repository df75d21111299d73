// Package ask is what `ony request` does once its flags are read: create a handoff, retrying what may
// be retried under one idempotency key, wait for a human to decide, and say in one line how it ended.
package ask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/client"
)

// Create retry policy: network errors, 5xx and 429 are retried under the same idempotency key, so a
// request whose answer was lost is replayed rather than created twice.
const (
	// DefaultAttempts is how many times Run tries to create the handoff unless told otherwise.
	DefaultAttempts      = 5
	createAttemptTimeout = 30 * time.Second
	createFirstBackoff   = 500 * time.Millisecond
	// waitGrace is how long past expires_at Run keeps waiting for the server to report expiry.
	waitGrace = 30 * time.Second
	// MaxPayload bounds what ReadPayload reads; the server has its own, smaller and configurable,
	// limit.
	MaxPayload = 64 << 20
)

// Options are one request for a human decision.
type Options struct {
	Request client.CreateRequest
	// IdempotencyKey is sent with every attempt to create the handoff, so that a retry never creates
	// a second one.
	IdempotencyKey string
	// Attempts is how many times to try creating the handoff; 0 means DefaultAttempts.
	Attempts int
	// Wait blocks until the handoff is final; without it Run returns once the handoff exists.
	Wait bool
	// JSON prints the handoff as JSON instead of its id (without Wait) or a line saying how it ended.
	JSON bool
}

// Run creates the handoff on c (whose server is baseURL, named in messages with any password
// redacted) and, with o.Wait, waits until it is final. It prints the handoff to stdout and what it is
// doing to stderr, and returns the handoff as last seen. An error is never a decision: it means the
// request could not be made, or its outcome not learnt.
func Run(ctx context.Context, c *client.Client, baseURL string, o Options, stdout, stderr io.Writer) (*client.Handoff, error) {
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	h, replayed, err := createWithRetry(ctx, c, o.Request, o.IdempotencyKey, attempts, stderr)
	if err != nil {
		return nil, errors.New(describeAPIError("create the handoff", baseURL, err))
	}
	if replayed {
		fmt.Fprintf(stderr, "ony: handoff %s already existed for this idempotency key; not created again\n", h.ID)
	}
	if !o.Wait {
		if o.JSON {
			return h, json.NewEncoder(stdout).Encode(h)
		}
		_, err := fmt.Fprintln(stdout, h.ID)
		return h, err
	}

	if !h.Final() {
		fmt.Fprintf(stderr, "ony: waiting for a human decision on %s (risk %s, expires in %s) …\n",
			h.ConsoleURL, h.Risk, formatDuration(time.Until(h.ExpiresAt)))
		h, err = waitFinal(ctx, c, h, baseURL)
		if err != nil {
			return nil, err
		}
	}
	if o.JSON {
		return h, json.NewEncoder(stdout).Encode(h)
	}
	fmt.Fprintln(stdout, Describe(h))
	return h, nil
}

// ReadPayload reads file (- is stdin) or, with file empty, stdin: UTF-8 text of at most MaxPayload
// bytes. The content is for the server and is never printed.
func ReadPayload(file string, stdin io.Reader) (string, error) {
	r, name := stdin, "standard input"
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("payload: %w", err)
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxPayload+1))
	if err != nil {
		return "", fmt.Errorf("payload: read %s: %w", name, err)
	}
	if len(b) > MaxPayload {
		return "", fmt.Errorf("payload: %s is over %d bytes", name, MaxPayload)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("payload: %s is not UTF-8 text", name)
	}
	return string(b), nil
}

// createWithRetry posts the handoff, retrying network errors, 5xx and 429 with backoff under the same
// idempotency key.
func createWithRetry(ctx context.Context, c *client.Client, req client.CreateRequest, key string, attempts int, stderr io.Writer) (*client.Handoff, bool, error) {
	backoff := createFirstBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, createAttemptTimeout)
		h, replayed, err := c.Create(actx, req, key)
		cancel()
		if err == nil || attempt == attempts || !client.Retryable(err) || ctx.Err() != nil {
			return h, replayed, err
		}
		fmt.Fprintf(stderr, "ony: could not create the handoff (%s); retrying in %s\n", shortError(err), backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		backoff *= 2
	}
}

// waitFinal waits until h is final. It gives up waitGrace after the handoff was due to expire (by the
// local clock, or by its own timeout counted from now, whichever is later, so clock skew cannot cut
// it short): by then the server should have reported it expired.
func waitFinal(ctx context.Context, c *client.Client, h *client.Handoff, baseURL string) (*client.Handoff, error) {
	d := max(time.Until(h.ExpiresAt), h.ExpiresAt.Sub(h.CreatedAt)) + waitGrace
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	final, err := c.Wait(wctx, h.ID)
	switch {
	case err == nil:
		return final, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("interrupted while waiting; handoff %s is still pending (%s)", h.ID, h.ConsoleURL)
	case wctx.Err() != nil:
		return nil, fmt.Errorf("the server did not report handoff %s final %s after it was due to expire", h.ID, waitGrace)
	}
	return nil, errors.New(describeAPIError("wait for handoff "+h.ID, baseURL, err))
}

// Describe is a final handoff's outcome on one line: `approved by Ana via api: "go ahead"`,
// `expired (no human decision within 10m)`. Names and the channel lose their control characters.
func Describe(h *client.Handoff) string {
	if h.Status == client.StatusExpired {
		return "expired (no human decision within " + formatDuration(h.ExpiresAt.Sub(h.CreatedAt)) + ")"
	}
	var b strings.Builder
	b.WriteString(printable(h.Status))
	d := h.Decision
	if d == nil {
		return b.String()
	}
	if d.By != nil {
		name := d.By.Name
		if name == "" {
			name = d.By.Kind + " " + d.By.ID
		}
		b.WriteString(" by " + printable(name))
	}
	if d.Channel != "" {
		b.WriteString(" via " + printable(d.Channel))
	}
	if d.Option != "" && d.Option != "approve" && d.Option != "deny" {
		b.WriteString(" (option " + strconv.Quote(d.Option) + ")")
	}
	if d.Comment != "" {
		b.WriteString(": " + strconv.Quote(d.Comment))
	}
	return b.String()
}

// printable drops control characters, so that a name cannot move the cursor or recolor a terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// formatDuration writes 10m rather than 10m0s.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// describeAPIError explains a failed call without repeating the client's "ony:" prefix.
func describeAPIError(what, baseURL string, err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		msg := fmt.Sprintf("could not %s: the server answered %d %s: %s", what, ae.Status, ae.Code, ae.Message)
		if ae.Status == 401 {
			msg += " (check the device token: ONY_TOKEN, ONY_TOKEN_FILE or --token)"
		}
		return msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		where := baseURL
		if u, perr := url.Parse(baseURL); perr == nil {
			where = u.Redacted()
		}
		return fmt.Sprintf("could not %s: cannot reach Ony at %s: %v", what, where, ue.Err)
	}
	return fmt.Sprintf("could not %s: %v", what, err)
}

func shortError(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", ae.Status, ae.Code)
	}
	return err.Error()
}
