package server

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

func peopleOnly(a handoff.Actor) error {
	if a.Kind != store.ActorUser {
		return problem.New(problem.Forbidden, "people_only", "sign in as a person to see this")
	}
	return nil
}

// ladderView is a ladder as the API shows it: durations as "5m", targets in their YAML form, and a
// file ladder's origin as its file name (not the server's paths).
type ladderView struct {
	Name    string           `json:"name"`
	Version int              `json:"version"`
	Origin  string           `json:"origin"`
	Order   int              `json:"order"`
	Default bool             `json:"default"`
	Match   escalation.Match `json:"match"`
	Steps   []ladderStepView `json:"steps"`
	Repeat  int              `json:"repeat"`
	End     escalation.End   `json:"end"`
	// Source is the YAML an admin put; absent for ladders from files and the built-in one.
	Source string `json:"source,omitempty"`
}

type ladderStepView struct {
	Name            string              `json:"name,omitempty"`
	Channels        []string            `json:"channels"`
	Targets         []string            `json:"targets"`
	Wait            string              `json:"wait"`
	QuietHours      escalation.Quiet    `json:"quiet_hours"`
	OverrideQuietAt string              `json:"override_quiet_hours_at,omitempty"`
	Redial          *redialView         `json:"redial,omitempty"`
	Providers       map[string][]string `json:"providers,omitempty"`
}

type redialView struct {
	Times int    `json:"times"`
	Gap   string `json:"gap"`
}

func newLadderView(l *escalation.Ladder, source []byte) ladderView {
	v := ladderView{Name: l.Name, Version: l.Version, Origin: l.Origin, Order: l.Order, Default: l.Default, Match: l.Match,
		Repeat: l.Repeat, End: l.End, Source: string(source)}
	if p, ok := strings.CutPrefix(l.Origin, "file:"); ok {
		v.Origin = "file:" + filepath.Base(p)
	}
	for _, st := range l.Steps {
		sv := ladderStepView{Name: st.Name, Channels: st.Channels, Wait: escalation.FormatDuration(st.Wait), QuietHours: st.Quiet,
			OverrideQuietAt: st.OverrideQuietAt, Providers: st.Providers}
		for _, t := range st.Targets {
			sv.Targets = append(sv.Targets, t.String())
		}
		if st.Redial.Times > 0 {
			sv.Redial = &redialView{Times: st.Redial.Times, Gap: escalation.FormatDuration(st.Redial.Gap)}
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}

func (s *Server) listLadders(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	if err := peopleOnly(a); err != nil {
		return err
	}
	infos, err := s.esc.OrgLadders(r.Context(), a.OrgID)
	if err != nil {
		return err
	}
	out := struct {
		Ladders []ladderView `json:"ladders"`
	}{Ladders: []ladderView{}}
	for _, i := range infos {
		out.Ladders = append(out.Ladders, newLadderView(i.Ladder, i.Source))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getLadder(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	if err := peopleOnly(a); err != nil {
		return err
	}
	infos, err := s.esc.OrgLadders(r.Context(), a.OrgID)
	if err != nil {
		return err
	}
	for _, i := range infos {
		if i.Ladder.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, newLadderView(i.Ladder, i.Source))
			return nil
		}
	}
	return problem.New(problem.NotFound, "ladder_not_found", "no such ladder")
}

// putLadder replaces (or adds) one of the organization's ladders from a YAML body.
func (s *Server) putLadder(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	if err := peopleOnly(a); err != nil {
		return err
	}
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, escalation.MaxLadderBytes))
	if err != nil {
		return jsonProblem(err)
	}
	l, err := s.esc.PutLadder(r.Context(), escalation.Admin{OrgID: a.OrgID, UserID: a.ID, Role: a.Role}, r.PathValue("name"), src)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newLadderView(l, src))
	return nil
}

type sendView struct {
	Climb     int             `json:"climb"`
	Step      int             `json:"step"`
	Attempt   int             `json:"attempt"`
	Channel   string          `json:"channel"`
	Target    string          `json:"target"`
	Provider  string          `json:"provider,omitempty"`
	State     store.SendState `json:"state"`
	Detail    string          `json:"detail,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

type escalationView struct {
	Ladder  string     `json:"ladder"`
	Version int        `json:"version"`
	Sends   []sendView `json:"sends"`
}

// handoffEscalation shows how far a handoff's ladder has climbed: every notification and its state,
// including the people skipped for quiet hours or caps and why.
func (s *Server) handoffEscalation(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	h, err := s.handoffs.Get(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	sends, err := s.esc.Timeline(r.Context(), a.OrgID, h.ID)
	if err != nil {
		return err
	}
	out := escalationView{Ladder: h.LadderName, Version: h.LadderVersion, Sends: []sendView{}}
	for _, x := range sends {
		if x.State == store.SendStepDone {
			continue
		}
		v := sendView{Climb: x.Climb, Step: x.Step, Attempt: x.Attempt, Channel: x.Channel, Target: x.Target,
			Provider: x.Provider, State: x.State, Detail: x.Detail, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt}
		if a.Kind != store.ActorUser && !strings.Contains(v.Target, ":") {
			// An agent learns how far its request got, not who was paged or who was asleep.
			v.Target = "person"
			if v.State == store.SendQuiet {
				v.State, v.Detail = store.SendSkipped, ""
			}
		}
		out.Sends = append(out.Sends, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// inbox lists the pending handoffs a person was sent to on the console.
func (s *Server) inbox(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	if err := peopleOnly(a); err != nil {
		return err
	}
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return problem.New(problem.Invalid, "invalid_limit", "limit is 1 to 500")
		}
		limit = n
	}
	hs, err := s.esc.Inbox(r.Context(), a.OrgID, a.ID, limit)
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
