package handoff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/internal/netguard"
	"github.com/ony-ai/ony/internal/summarize"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/store"
)

// ExpireArgs ends one undecided handoff: a ladder's end (Ladder), or, in databases from before the
// expiry sweep (expiry.go), the timer each handoff carried to its expires_at.
type ExpireArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
	// Ladder is set when the handoff's escalation ladder ran out before its timeout: it expires then,
	// not at expires_at.
	Ladder bool `json:"ladder,omitempty"`
}

// Kind implements river.JobArgs.
func (ExpireArgs) Kind() string { return "handoff.expire" }

// CallbackArgs is the durable delivery of a final state to the agent's callback_url.
type CallbackArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

// Kind implements river.JobArgs.
func (CallbackArgs) Kind() string { return "handoff.callback" }

// SummarizeArgs asks the optional model for a better gist once the handoff exists; the deterministic
// gist stands until (and unless) it succeeds.
type SummarizeArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

// Kind implements river.JobArgs.
func (SummarizeArgs) Kind() string { return "handoff.summarize" }

// RegisterWorkers adds the service's job workers.
func (s *Service) RegisterWorkers(w *river.Workers) {
	// Handoffs no longer get an expiry job (the sweep ends them), but databases made before keep the
	// jobs they queued, and a ladder's end is still one.
	river.AddWorker(w, &expireWorker{s: s})
	river.AddWorker(w, &expiryWorker{s: s})
	river.AddWorker(w, &callbackWorker{s: s})
	river.AddWorker(w, &summarizeWorker{s: s})
}

type summarizeWorker struct {
	river.WorkerDefaults[SummarizeArgs]
	s *Service
}

// Timeout: a model call has its own, shorter timeout; this is the backstop.
func (w *summarizeWorker) Timeout(*river.Job[SummarizeArgs]) time.Duration { return 2 * time.Minute }

func (w *summarizeWorker) Work(ctx context.Context, job *river.Job[SummarizeArgs]) error {
	s := w.s
	if s.sum == nil {
		return nil
	}
	var h store.Handoff
	err := s.store.InOrg(ctx, job.Args.OrgID, func(tx store.OrgTx) (err error) {
		h, err = tx.HandoffByID(ctx, job.Args.HandoffID)
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if h.Status.Final() {
		return nil // decided before the model answered; nobody needs the gist now
	}
	p, err := s.Payload(ctx, h)
	if err != nil {
		return err
	}
	gist, err := s.sum.Summarize(ctx, s.FingerprintKey(h.OrgID), summarize.Input{Action: h.Action, Risk: h.Risk,
		Title: h.Title, Summary: h.Summary, PayloadKind: p.Kind, Payload: p.Content})
	if err != nil || gist == "" || gist == h.Gist {
		return err
	}
	return s.store.InOrg(ctx, h.OrgID, func(tx store.OrgTx) error { return tx.SetHandoffGist(ctx, h.ID, gist) })
}

type expireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	s *Service
}

func (w *expireWorker) Work(ctx context.Context, job *river.Job[ExpireArgs]) error {
	if job.Args.Ladder {
		err := w.s.ExpireExhausted(ctx, job.Args.OrgID, job.Args.HandoffID)
		if errors.Is(err, ErrLadderUnderWay) {
			return river.JobSnooze(time.Second)
		}
		return err
	}
	_, err := w.s.Expire(ctx, job.Args.OrgID, job.Args.HandoffID)
	switch {
	case errors.Is(err, errNotDue):
		// This worker's clock is behind the one that scheduled it; try again shortly.
		return river.JobSnooze(time.Second)
	case isNotFound(err):
		return nil // the organization or handoff was erased
	}
	return err
}

type callbackWorker struct {
	river.WorkerDefaults[CallbackArgs]
	s *Service
}

// Timeout bounds one delivery attempt: the POST's own timeout and the reads around it.
func (w *callbackWorker) Timeout(*river.Job[CallbackArgs]) time.Duration {
	return w.s.cfg.CallbackTimeout + 10*time.Second
}

// NextRetry backs off exponentially from 2 s to at most 15 min, with jitter so a recovering agent is
// not hit by every retry at once.
func (w *callbackWorker) NextRetry(job *river.Job[CallbackArgs]) time.Time {
	d := min(2*time.Second<<min(job.Attempt, 20), 15*time.Minute)
	return time.Now().Add(d/2 + rand.N(d/2))
}

func (w *callbackWorker) Work(ctx context.Context, job *river.Job[CallbackArgs]) error {
	s := w.s
	var h store.Handoff
	var dev store.Device
	err := s.store.InOrg(ctx, job.Args.OrgID, func(tx store.OrgTx) error {
		var err error
		if h, err = tx.HandoffByID(ctx, job.Args.HandoffID); err != nil {
			return err
		}
		dev, err = tx.DeviceByID(ctx, h.DeviceID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if h.CallbackURL == "" || !h.Status.Final() {
		return nil
	}
	body, err := json.Marshal(NewView(h, s.cfg.PublicURL))
	if err != nil {
		return err
	}
	// The id is stable across retries so the agent can deduplicate.
	id := "msg_" + h.ID + "_" + string(h.Status)
	host := ""
	if u, err := url.Parse(h.CallbackURL); err == nil {
		host = u.Host
	}
	// The error names the host, never the path or query, which could carry the agent's secrets.
	err = auth.PostWebhook(ctx, s.client, h.CallbackURL, "ony-callback/1", dev.CallbackKey, id, s.now(), body)
	s.metrics.Callback(callbackResult(err))
	if errors.Is(err, auth.ErrWebhookURL) {
		return river.JobCancel(fmt.Errorf("callback: bad URL"))
	}
	var refused *netguard.RefusedError
	if errors.As(err, &refused) {
		// Asking again would reach the same place: give up now. Neither the URL nor its host is
		// logged (either can carry the agent's secrets); the address and its range say enough.
		s.log.WarnContext(ctx, "callback refused: its address is not public", "org", h.OrgID, "handoff", h.ID,
			"address", refused.Addr, "range", refused.Range)
		return river.JobCancel(fmt.Errorf("callback refused: %s address", refused.Range))
	}
	if err != nil {
		return fmt.Errorf("callback to %s: %w", host, err)
	}
	s.log.InfoContext(ctx, "callback delivered", "handoff", h.ID, "status", h.Status, "attempt", job.Attempt)
	return nil
}

// callbackResult names a delivery attempt's outcome for the metrics.
func callbackResult(err error) string {
	var refused *netguard.RefusedError
	switch {
	case err == nil:
		return metrics.CallbackDelivered
	case errors.Is(err, auth.ErrWebhookURL):
		return metrics.CallbackBadURL
	case errors.As(err, &refused):
		return metrics.CallbackRefused
	}
	return metrics.CallbackFailed
}

func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || isProblemCode(err, "handoff_not_found")
}
