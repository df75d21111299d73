package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// inboxRows bounds the inbox: rows beyond it are not shown (filters narrow it), and it bounds the
// per-row timeline reads.
const inboxRows = 50

// inboxFilter is the inbox's GET form.
type inboxFilter struct {
	Status, Risk, Action, Agent, Label string
}

func parseInboxFilter(v url.Values) inboxFilter {
	f := inboxFilter{Status: v.Get("status"), Risk: v.Get("risk"), Action: strings.TrimSpace(v.Get("action")),
		Agent: v.Get("agent"), Label: strings.TrimSpace(v.Get("label"))}
	if f.Status == "" {
		f.Status = string(store.StatusPending)
	}
	return f
}

func (f inboxFilter) Query() string {
	v := url.Values{}
	for k, s := range map[string]string{"status": f.Status, "risk": f.Risk, "action": f.Action, "agent": f.Agent, "label": f.Label} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

func (f inboxFilter) match(h store.Handoff) bool {
	if f.Risk != "" && h.Risk != f.Risk {
		return false
	}
	if f.Action != "" && h.Action != f.Action && !strings.HasPrefix(h.Action, f.Action+".") {
		return false
	}
	if f.Agent != "" && h.DeviceID != f.Agent {
		return false
	}
	if f.Label != "" {
		k, v, hasValue := strings.Cut(f.Label, "=")
		got, ok := h.Labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// progress is how far a handoff's ladder got, from its sends.
type progress struct {
	Rungs, Delivered, Failed, Waiting int
}

func summarize(sends []store.Send) progress {
	var p progress
	for _, s := range sends {
		switch s.State {
		case store.SendStepDone:
			p.Rungs++
		case store.SendSent, store.SendDelivered, store.SendAnswered:
			p.Delivered++
		case store.SendFailed, store.SendCapped, store.SendNoAnswer, store.SendBusy:
			p.Failed++
		case store.SendSending:
			p.Waiting++
		}
	}
	return p
}

type inboxRow struct {
	H        store.Handoff
	Agent    string
	Progress progress
}

type agentOption struct{ ID, Name string }

func (c *Console) inboxData(ctx context.Context, q *req, f inboxFilter) (map[string]any, error) {
	lf := store.HandoffFilter{Limit: 500}
	if f.Status != "any" {
		lf.Status = store.Status(f.Status)
		if !lf.Status.Valid() {
			return nil, problem.New(problem.Invalid, "invalid_status", "status must be pending, approved, denied, expired, cancelled or any")
		}
	}
	hs, err := c.d.Handoffs.List(ctx, q.actor(), lf)
	if err != nil {
		return nil, err
	}
	devs, err := c.d.Org.Devices(ctx, q.P.OrgID)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(devs))
	agents := make([]agentOption, 0, len(devs))
	for _, d := range devs {
		names[d.ID] = d.Name
		agents = append(agents, agentOption{d.ID, d.Name})
	}
	var rows []inboxRow
	more := false
	for _, h := range hs {
		if !f.match(h) {
			continue
		}
		if len(rows) == inboxRows {
			more = true
			break
		}
		rows = append(rows, inboxRow{H: h, Agent: names[h.DeviceID]})
	}
	// One timeline read per shown row, bounded by inboxRows.
	for i := range rows {
		sends, err := c.d.Escalation.Timeline(ctx, q.P.OrgID, rows[i].H.ID)
		if err != nil {
			return nil, err
		}
		rows[i].Progress = summarize(sends)
	}
	return map[string]any{"Title": "Inbox", "Rows": rows, "More": more, "Filter": f, "Agents": agents,
		"Statuses": []string{"pending", "approved", "denied", "expired", "cancelled", "any"},
		"Risks":    []string{"low", "medium", "high", "critical"}, "Now": c.now()}, nil
}

func (c *Console) inbox(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.inboxData(r.Context(), q, parseInboxFilter(r.URL.Query()))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "inbox", q, data)
	return nil
}

// inboxList is the list alone, which the live-update script swaps in.
func (c *Console) inboxList(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.inboxData(r.Context(), q, parseInboxFilter(r.URL.Query()))
	if err != nil {
		return err
	}
	c.renderFragment(w, r, "inbox", "inbox_list", data)
	return nil
}

// inboxState is a digest of what the inbox shows, so a stream can tell when it changed.
func (c *Console) inboxState(ctx context.Context, q *req) (string, error) {
	hs, err := c.d.Handoffs.List(ctx, q.actor(), store.HandoffFilter{Status: store.StatusPending, Limit: 500})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, x := range hs {
		fmt.Fprintf(h, "%s|%s|%s\n", x.ID, x.Status, x.Gist)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inboxEvents streams "changed" events while the pending list changes. It re-reads through the
// service every StreamPoll rather than subscribing, which bounds its cost at one list query per
// stream per poll; streams are capped, beat every StreamHeartbeat and end at StreamMax or on Drain
// (the browser reconnects by itself).
func (c *Console) inboxEvents(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.streams.Add(1) > int64(c.cfg.MaxStreams) {
		c.streams.Add(-1)
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live streams", http.StatusServiceUnavailable)
		return nil
	}
	defer c.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	last, err := c.inboxState(r.Context(), q)
	if err != nil {
		return nil // headers are sent; the browser retries
	}
	fmt.Fprint(w, "retry: 5000\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	poll := time.NewTicker(c.cfg.StreamPoll)
	defer poll.Stop()
	beat := time.NewTicker(c.cfg.StreamHeartbeat)
	defer beat.Stop()
	end := time.NewTimer(c.cfg.StreamMax)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-c.drain:
			return nil
		case <-end.C:
			return nil
		case <-beat.C:
			fmt.Fprint(w, ": beat\n\n")
		case <-poll.C:
			now, err := c.inboxState(r.Context(), q)
			if err != nil || now == last {
				continue
			}
			last = now
			fmt.Fprint(w, "event: changed\ndata: 1\n\n")
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// line is one line of a payload as shown: Class colours it (add, del, hunk, meta).
type line struct {
	Class, Text string
}

type payloadView struct {
	Kind  string
	Lines []line
	Bytes int
}

// renderPayload splits a payload for reading. The text is never marked safe: html/template escapes it.
func renderPayload(p handoff.Payload) *payloadView {
	if p.Kind == "" {
		return nil
	}
	v := &payloadView{Kind: p.Kind, Bytes: len(p.Content)}
	for _, s := range strings.Split(strings.TrimRight(p.Content, "\n"), "\n") {
		l := line{Text: s}
		if p.Kind == "diff" {
			switch {
			case strings.HasPrefix(s, "+++"), strings.HasPrefix(s, "---"), strings.HasPrefix(s, "diff "), strings.HasPrefix(s, "index "):
				l.Class = "meta"
			case strings.HasPrefix(s, "@@"):
				l.Class = "hunk"
			case strings.HasPrefix(s, "+"):
				l.Class = "add"
			case strings.HasPrefix(s, "-"):
				l.Class = "del"
			}
		}
		v.Lines = append(v.Lines, l)
	}
	return v
}

func (c *Console) handoffData(ctx context.Context, q *req, id string) (map[string]any, error) {
	h, err := c.d.Handoffs.Get(ctx, q.actor(), id)
	if err != nil {
		return nil, err
	}
	p, err := c.d.Handoffs.Payload(ctx, h)
	if err != nil {
		return nil, err
	}
	sends, err := c.d.Escalation.Timeline(ctx, q.P.OrgID, h.ID)
	if err != nil {
		return nil, err
	}
	sends = slices.DeleteFunc(sends, func(s store.Send) bool { return s.State == store.SendStepDone })
	// Notifications name people, not user ids; a team address (webhook:…, slack:#…) shows as it is.
	members, err := c.d.Org.Members(ctx, q.P.OrgID)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(members))
	for _, m := range members {
		names[m.ID] = m.Name
	}
	stepUp := false
	if c.d.StepUp != nil && h.Status == store.StatusPending && q.P.Role.CanDecide() {
		if stepUp, err = c.d.StepUp.StepUpRequired(ctx, q.P.OrgID, h.Risk); err != nil {
			return nil, err
		}
	}
	// The page title is the action and risk, never the agent's title: titles can carry what the
	// payload does, and titles end up in history and tab lists.
	return map[string]any{"Title": "Handoff · " + h.Action, "H": h, "Payload": renderPayload(p), "PayloadRemoved": handoff.PayloadRemoved(h), "Sends": sends,
		"Names": names, "Decision": handoff.NewDecisionView(h), "StepUp": stepUp, "Pending": h.Status == store.StatusPending,
		"Progress": summarize(sends)}, nil
}

func (c *Console) handoffPage(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.handoffData(r.Context(), q, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "handoff", q, data)
	return nil
}

func (c *Console) decide(w http.ResponseWriter, r *http.Request, q *req) error {
	id := r.PathValue("id")
	if !q.P.Role.CanDecide() {
		// Still the 404 for handoffs the person cannot see.
		if _, err := c.d.Handoffs.Get(r.Context(), q.actor(), id); err != nil {
			return err
		}
		return problem.New(problem.Forbidden, "role_cannot_decide", "your role (%s) can view handoffs but not decide them", q.P.Role)
	}
	opt, comment, code := r.PostFormValue("option"), strings.TrimSpace(r.PostFormValue("comment")), strings.TrimSpace(r.PostFormValue("totp"))
	var err error
	if c.d.Decide != nil {
		_, err = c.d.Decide(r.Context(), q.actor(), id, opt, comment, "console", code)
	} else {
		_, err = c.d.Handoffs.Decide(r.Context(), q.actor(), id, opt, comment, "console")
	}
	if err != nil {
		msg, ok := problemMessage(err)
		if !ok {
			return err
		}
		data, derr := c.handoffData(r.Context(), q, id)
		if derr != nil {
			return derr
		}
		data["Error"], data["Comment"] = msg, comment
		status := statusFor(err)
		if p, _ := problem.As(err); p != nil && p.Code == "already_final" {
			status = http.StatusConflict
		}
		c.render(w, r, status, "handoff", q, data)
		return nil
	}
	return redirect(w, r, "/console/handoffs/"+url.PathEscape(id))
}
