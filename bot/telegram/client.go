package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxRetries bounds how often one call is repeated after a 429: more than that and the engine's
// failover or the job's retry is the better answer.
const maxRetries = 2

// maxReply bounds a Bot API reply we read; real replies are a few KiB (getUpdates up to 100 updates).
const maxReply = 8 << 20

// APIError is a refusal from the Bot API ("ok": false). Description is Telegram's own text, which
// never carries the bot token.
type APIError struct {
	Method      string
	Code        int
	Description string
	// RetryAfter is set on 429 (parameters.retry_after).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram: %s: %d %s", e.Method, e.Code, e.Description)
}

// transportError hides the *url.Error net/http returns, whose text quotes the URL and so the bot
// token; Unwrap keeps the cause (a deadline, a cancellation) for errors.Is.
type transportError struct {
	method, op string
	cause      error
}

func (e *transportError) Error() string {
	return "telegram: " + e.method + ": " + e.op + " failed"
}

func (e *transportError) Unwrap() error { return e.cause }

type reply struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	Description string          `json:"description"`
	ErrorCode   int             `json:"error_code"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call POSTs params as JSON to method and decodes the result into out (when not nil), waiting out
// a 429's retry_after when ctx leaves time for it. extra lengthens the per-call timeout for long polls.
func (c *Channel) call(ctx context.Context, method string, params, out any, extra time.Duration) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram: %s: encode: %w", method, err)
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, body, out, extra)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusTooManyRequests || ae.RetryAfter <= 0 || attempt >= maxRetries {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && c.clock().Add(ae.RetryAfter).After(dl) {
			return err // the caller's deadline comes first: let it fail over instead of waiting in vain
		}
		c.log.Debug("telegram rate limited", "method", method, "retry_after", ae.RetryAfter)
		if werr := c.wait(ctx, ae.RetryAfter); werr != nil {
			return err
		}
	}
}

func (c *Channel) once(ctx context.Context, method string, body []byte, out any, extra time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/bot"+c.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return &transportError{method: method, op: "request", cause: errors.Unwrap(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &transportError{method: method, op: "post", cause: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &transportError{method: method, op: "read", cause: err}
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("telegram: %s: HTTP %d with an unreadable reply", method, resp.StatusCode)
	}
	if !r.OK {
		ae := &APIError{Method: method, Code: r.ErrorCode, Description: r.Description}
		if ae.Code == 0 {
			ae.Code = resp.StatusCode
		}
		if r.Parameters != nil && r.Parameters.RetryAfter > 0 {
			ae.RetryAfter = time.Duration(r.Parameters.RetryAfter) * time.Second
		}
		return ae
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("telegram: %s: HTTP %d", method, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			return fmt.Errorf("telegram: %s: decode result: %w", method, err)
		}
	}
	return nil
}

// wait sleeps d unless ctx ends first.
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
