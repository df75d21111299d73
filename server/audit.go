package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

type auditKeyView struct {
	Keys []string `json:"keys"`
}

// auditKey serves the checkpoint verifier keys. They are public: anyone may check a checkpoint.
func (s *Server) auditKey(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, auditKeyView{Keys: s.audit.Keys()})
	return nil
}

// auditCheckpoint serves the caller's organization's latest signed checkpoint as a signed note.
func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request) error {
	cp, err := s.audit.Checkpoint(r.Context(), s.store, actorFrom(r.Context()).OrgID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = w.Write(cp)
	return err
}

func int64Param(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, problem.New(problem.Invalid, "invalid_"+name, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func auditErr(err error) error {
	if errors.Is(err, audit.ErrRange) || errors.Is(err, store.ErrNotFound) {
		return problem.New(problem.NotFound, "out_of_range", "that index or size is not in the log")
	}
	return err
}

// auditInclusion proves leaf ?index is in the tree of ?size (default: the current size).
func (s *Server) auditInclusion(w http.ResponseWriter, r *http.Request) error {
	index, err := int64Param(r, "index", -1)
	if err != nil {
		return err
	}
	if index < 0 {
		return problem.New(problem.Invalid, "invalid_index", "index is required")
	}
	size, err := int64Param(r, "size", 0)
	if err != nil {
		return err
	}
	p, err := s.audit.ProveInclusion(r.Context(), s.store, actorFrom(r.Context()).OrgID, index, size)
	if err != nil {
		return auditErr(err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// auditConsistency proves the tree of ?old is a prefix of the tree of ?new (default: current size).
func (s *Server) auditConsistency(w http.ResponseWriter, r *http.Request) error {
	old, err := int64Param(r, "old", 0)
	if err != nil {
		return err
	}
	if old < 1 {
		return problem.New(problem.Invalid, "invalid_old", "old is a size of at least 1")
	}
	newSize, err := int64Param(r, "new", 0)
	if err != nil {
		return err
	}
	p, err := s.audit.ProveConsistency(r.Context(), s.store, actorFrom(r.Context()).OrgID, old, newSize)
	if err != nil {
		return auditErr(err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type leavesView struct {
	Leaves []leafView `json:"leaves"`
}

type leafView struct {
	Index int64  `json:"index"`
	Data  []byte `json:"data"` // the exact hashed bytes, base64 in JSON
}

// auditLeaves lets people (not agents) read their organization's log.
func (s *Server) auditLeaves(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	if a.Kind != store.ActorUser {
		return problem.New(problem.Forbidden, "people_only", "only people read the audit log")
	}
	from, err := int64Param(r, "from", 0)
	if err != nil {
		return err
	}
	limit, err := int64Param(r, "limit", 100)
	if err != nil || limit < 1 || limit > 1000 {
		return problem.New(problem.Invalid, "invalid_limit", "limit is 1 to 1000")
	}
	ls, err := s.audit.Leaves(r.Context(), s.store, a.OrgID, from, int(limit))
	if err != nil {
		return err
	}
	out := leavesView{Leaves: make([]leafView, 0, len(ls))}
	for _, l := range ls {
		out.Leaves = append(out.Leaves, leafView{Index: l.Index, Data: l.Data})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
