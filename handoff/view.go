package handoff

import (
	"net/url"
	"time"

	"github.com/ony-ai/ony/store"
)

// View is a handoff as the API and callbacks show it. It never carries the payload's content, the
// callback URL or anything the agent claimed about risk.
type View struct {
	ID          string            `json:"id"`
	Status      store.Status      `json:"status"`
	Action      string            `json:"action"`
	Title       string            `json:"title"`
	Summary     string            `json:"summary,omitempty"`
	Gist        string            `json:"gist"`
	Risk        string            `json:"risk"`
	RiskReasons []string          `json:"risk_reasons"`
	Options     []store.Option    `json:"options"`
	Labels      map[string]string `json:"labels,omitempty"`
	Payload     *PayloadView      `json:"payload,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	ConsoleURL  string            `json:"console_url"`
	Decision    *DecisionView     `json:"decision,omitempty"`
	// Ladder names the escalation ladder frozen onto the handoff.
	Ladder *LadderRef `json:"ladder,omitempty"`
}

// LadderRef names a ladder version.
type LadderRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// PayloadView says a payload exists without showing it.
type PayloadView struct {
	Kind  string `json:"kind"`
	Bytes int    `json:"bytes"`
	// Removed is set once the retention sweep scrubbed the payload: kind and size remain.
	Removed bool `json:"removed,omitempty"`
}

// DecisionView is how the handoff ended.
type DecisionView struct {
	Option    string       `json:"option,omitempty"`
	Approved  bool         `json:"approved"`
	By        *DeciderView `json:"by,omitempty"`
	Channel   string       `json:"channel"`
	Comment   string       `json:"comment,omitempty"`
	DecidedAt time.Time    `json:"decided_at"`
	Outcome   store.Status `json:"outcome"`
}

// DeciderView names who ended the handoff.
type DeciderView struct {
	Kind store.ActorKind `json:"kind"`
	ID   string          `json:"id"`
	Name string          `json:"name,omitempty"`
}

// NewView renders h; publicURL is the instance's base URL for console links.
func NewView(h store.Handoff, publicURL string) View {
	v := View{
		ID: h.ID, Status: h.Status, Action: h.Action, Title: h.Title, Summary: h.Summary, Gist: h.Gist,
		Risk: h.Risk, RiskReasons: h.RiskReasons, Options: h.Options, Labels: h.Labels,
		CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt, ConsoleURL: ConsoleURL(publicURL, h.ID),
		Decision: NewDecisionView(h),
	}
	if v.RiskReasons == nil {
		v.RiskReasons = []string{}
	}
	if h.LadderName != "" {
		v.Ladder = &LadderRef{Name: h.LadderName, Version: h.LadderVersion}
	}
	if h.PayloadKind != "" {
		v.Payload = &PayloadView{Kind: h.PayloadKind, Bytes: h.PayloadSize, Removed: PayloadRemoved(h)}
	}
	return v
}

// NewDecisionView renders h's decision, or nil while it is pending.
func NewDecisionView(h store.Handoff) *DecisionView {
	d := h.Decision
	if d == nil {
		return nil
	}
	dv := &DecisionView{Option: d.OptionID, Approved: h.Status == store.StatusApproved, Channel: d.Channel,
		Comment: d.Comment, DecidedAt: d.DecidedAt, Outcome: h.Status}
	if d.ByKind != store.ActorSystem {
		dv.By = &DeciderView{Kind: d.ByKind, ID: d.ByID, Name: d.ByName}
	}
	return dv
}

// ConsoleURL is where a person sees the handoff, payload included, after signing in.
func ConsoleURL(publicURL, id string) string {
	return publicURL + "/console/handoffs/" + url.PathEscape(id)
}
