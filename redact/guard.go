package redact

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrBlocked means a text could not be shown to be clean and must not leave the process.
var ErrBlocked = errors.New("redact: egress blocked")

// maxAbandoned bounds the redactions still running after their callers gave up on them
// (timeouts). Past it, Clean blocks at once instead of starting more work.
const maxAbandoned = 64

// Guard is what every outbound path calls before anything leaves the process: chat, SMS,
// call scripts, model prompts, webhooks to third parties, logs. It redacts; if redaction fails,
// panics or runs past the timeout, Clean returns ErrBlocked and an empty string, and the
// caller must send nothing. It is safe for concurrent use.
type Guard struct {
	r       *Redactor
	timeout time.Duration

	passed, redacted, blocked atomic.Uint64
	running                   atomic.Int64
}

// GuardStats counts Clean's outcomes: texts that went out unchanged, texts that went out
// redacted, and texts stopped.
type GuardStats struct {
	Passed, Redacted, Blocked uint64
}

// NewGuard returns a guard redacting with r and giving each text at most timeout
// (≤ 0 means no limit of its own; the context still applies).
func NewGuard(r *Redactor, timeout time.Duration) *Guard {
	return &Guard{r: r, timeout: timeout}
}

// Stats reports the counts so far.
func (g *Guard) Stats() GuardStats {
	return GuardStats{Passed: g.passed.Load(), Redacted: g.redacted.Load(), Blocked: g.blocked.Load()}
}

// Clean returns text with its secrets redacted, or ErrBlocked (wrapped with the cause) and
// "" when it cannot: the redactor failed or panicked, the timeout passed or ctx ended.
func (g *Guard) Clean(ctx context.Context, key []byte, text string) (string, error) {
	out, _, err := g.run(ctx, func(ctx context.Context) (string, int, error) {
		s, fs, err := g.r.redact(ctx, key, text)
		return s, len(fs), err
	})
	return out, err
}

// CleanJSON is Clean for a JSON document (RedactJSON): the result keeps its structure.
func (g *Guard) CleanJSON(ctx context.Context, key []byte, data []byte) ([]byte, error) {
	out, _, err := g.run(ctx, func(ctx context.Context) (string, int, error) {
		b, fs, err := g.r.redactJSON(ctx, key, data, 0)
		return string(b), len(fs), err
	})
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

type result struct {
	out string
	n   int
	err error
}

func (g *Guard) run(ctx context.Context, f func(context.Context) (string, int, error)) (string, int, error) {
	if g == nil {
		return "", 0, fmt.Errorf("%w: no guard", ErrBlocked)
	}
	block := func(cause error) (string, int, error) {
		g.blocked.Add(1)
		return "", 0, fmt.Errorf("%w: %v", ErrBlocked, cause)
	}
	if g.r == nil {
		return block(errors.New("no redactor"))
	}
	var deadline time.Time
	if g.timeout > 0 {
		var cancel context.CancelFunc
		deadline = time.Now().Add(g.timeout)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return block(err)
	}
	if g.running.Add(1) > maxAbandoned {
		g.running.Add(-1)
		return block(errors.New("too many redactions still running"))
	}
	done := make(chan result, 1)
	go func() {
		defer g.running.Add(-1)
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("redactor panicked: %v", p)}
			}
		}()
		out, n, err := f(ctx)
		done <- result{out, n, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return block(res.err)
		}
		// A result that arrives after the deadline is discarded too: late means unproven.
		if !deadline.IsZero() && time.Now().After(deadline) {
			return block(context.DeadlineExceeded)
		}
		if res.n > 0 {
			g.redacted.Add(1)
		} else {
			g.passed.Add(1)
		}
		return res.out, res.n, nil
	case <-ctx.Done():
		return block(ctx.Err())
	}
}
