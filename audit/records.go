package audit

import (
	"context"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/ony-ai/ony/store"
)

// records checks a log against the organization's handoffs. A database owner who cuts the log's tail
// and resets its head to an older checkpoint leaves a tree that is consistent with itself and with every
// checkpoint that remains; what it cannot hide is a handoff row that says "approved" with no leaf saying
// so. So every handoff must have its handoff.created leaf, every final one the leaf recording how it
// ended, and no leaf may speak of a handoff that does not exist or that ended otherwise.
type records struct {
	// orphan is set when the organization is gone: there is nothing to check the log against.
	orphan   bool
	byID     map[string]*handoffRecord
	headSize int64
	// The first problem a leaf showed, by index.
	badIndex int64
	problem  string
	// loaded is closed when the load started by startLoad has ended, with loadErr.
	loaded  chan struct{}
	loadErr error
}

type handoffRecord struct {
	id             string
	status         store.Status
	created, final int64 // the leaf indexes; -1 when none was seen
}

// finalLeaf is the event that records a handoff reaching status st.
func finalLeaf(st store.Status) EventType {
	switch st {
	case store.StatusExpired:
		return HandoffExpired
	case store.StatusCancelled:
		return HandoffCancelled
	}
	return HandoffDecided
}

// startLoad starts load in tx; wait waits for it. tx is the load's alone until wait returns.
func (x *records) startLoad(ctx context.Context, tx store.OrgTx, headSize int64) {
	x.loaded = make(chan struct{})
	go func() {
		defer close(x.loaded)
		x.loadErr = x.load(ctx, tx, headSize)
	}()
}

// wait returns when the load started by startLoad has ended, with its error; at once without one.
func (x *records) wait() error {
	if x == nil || x.loaded == nil {
		return nil
	}
	<-x.loaded
	return x.loadErr
}

// load reads the organization's handoffs, in the same snapshot as the head and the leaves: every
// handoff listed has its leaves below headSize among those read, or its records in the queue read
// after them, and every leaf below headSize names a listed handoff in the state that leaf recorded.
// It reads ids and statuses only, which an index holds; a report reads the times of the one handoff
// it names (check).
func (x *records) load(ctx context.Context, tx store.OrgTx, headSize int64) error {
	x.byID, x.headSize, x.badIndex = map[string]*handoffRecord{}, headSize, -1
	return tx.AuditHandoffStates(ctx, func(id string, st store.Status) error {
		x.byID[id] = &handoffRecord{id: id, status: st, created: -1, final: -1}
		return nil
	})
}

// leafEvent is the part of a leaf the cross-check reads.
type leafEvent struct {
	Type    EventType `json:"type"`
	Subject Subject   `json:"subject"`
	Outcome string    `json:"outcome"`
}

func (x *records) note(i int64, format string, args ...any) {
	if x.problem == "" {
		x.badIndex, x.problem = i, fmt.Sprintf(format, args...)
	}
}

// decodeLeafEvent reads what the cross-check needs of a leaf; safe to call from several goroutines.
// Leaves in Encode's shape take scanLeafEvent's path; json/v2 decodes the rest.
func decodeLeafEvent(data []byte) (leafEvent, error) {
	if e, ok := scanLeafEvent(data); ok {
		return e, nil
	}
	var e leafEvent
	// json/v2 is stricter than encoding/json: a member named twice, or in another case, is an error or
	// unread, where encoding/json took the last or matched it; the leaves it reads have passed the hash
	// check, so Encode wrote them, with neither.
	err := jsonv2.Unmarshal(data, &e)
	return e, err
}

// leaf takes leaf i into account.
func (x *records) leaf(i int64, data []byte) {
	e, err := decodeLeafEvent(data)
	x.event(i, e, err)
}

// event takes leaf i, decoded (or not: err), into account.
func (x *records) event(i int64, e leafEvent, err error) {
	if err != nil {
		x.note(i, "leaf %d is not an event: %v", i, err)
		return
	}
	switch e.Type {
	case HandoffCreated, HandoffDecided, HandoffExpired, HandoffCancelled:
	default:
		return
	}
	// Leaves from headSize on may have committed after the handoffs were listed; only the absence of
	// leaves, checked at the end, can be judged for them.
	settled := i < x.headSize
	h := x.byID[e.Subject.ID]
	switch {
	case e.Subject.Kind != "handoff":
		x.note(i, "leaf %d records %s of a %s, not a handoff", i, e.Type, e.Subject.Kind)
	case h == nil:
		if settled {
			x.note(i, "leaf %d records %s of handoff %s, which does not exist", i, e.Type, e.Subject.ID)
		}
	case e.Type == HandoffCreated && h.created >= 0:
		x.note(i, "leaf %d records handoff %s created again (first at leaf %d)", i, h.id, h.created)
	case e.Type == HandoffCreated:
		h.created = i
		if h.final >= 0 {
			x.note(i, "leaf %d records handoff %s created after its end at leaf %d", i, h.id, h.final)
		}
	case h.final >= 0:
		x.note(i, "leaf %d records handoff %s ending again (first at leaf %d)", i, h.id, h.final)
	default:
		h.final = i
		if !settled {
			return
		}
		if h.status == store.StatusPending {
			x.note(i, "handoff %s is pending but leaf %d records it %s", h.id, i, e.Outcome)
		} else if e.Type != finalLeaf(h.status) || e.Outcome != string(h.status) {
			x.note(i, "handoff %s is %s but leaf %d records it %s (%s)", h.id, h.status, i, e.Outcome, e.Type)
		}
	}
}

// check reports the first problem: one a leaf showed, else a handoff whose leaf is missing (of
// those, the one with the least id, so reports are reproducible). size is the number of leaves; latest
// is the newest stored checkpoint (nil when none); read reads the handoff a report names, for its times.
func (x *records) check(size int64, latest *store.AuditCheckpoint, read func(id string) (store.Handoff, error)) (int64, string) {
	if x.problem != "" {
		return x.badIndex, x.problem
	}
	var first *handoffRecord
	missing := 0
	for _, h := range x.byID {
		if h.created >= 0 && (!h.status.Final() || h.final >= 0) {
			continue
		}
		if missing++; first == nil || h.id < first.id {
			first = h
		}
	}
	if missing == 0 {
		return -1, ""
	}
	msg := missingLeaf(first, size, latest, read)
	switch {
	case missing == 2:
		msg += " (and 1 more handoff lacks leaves)"
	case missing > 2:
		msg += fmt.Sprintf(" (and %d more handoffs lack leaves)", missing-1)
	}
	// The missing leaves would have come after the last one: the log is short from there.
	return size, msg
}

// missingLeaf says which leaf handoff h lacks. Stored times are not signed, so they only explain; the
// missing leaf is the finding, and is reported without them when the handoff cannot be read again.
func missingLeaf(h *handoffRecord, size int64, latest *store.AuditCheckpoint, read func(id string) (store.Handoff, error)) string {
	var created time.Time
	var decided *time.Time
	if row, err := read(h.id); err == nil {
		created = row.CreatedAt
		if row.Decision != nil {
			decided = &row.Decision.DecidedAt
		}
	}
	if h.created < 0 {
		msg := "handoff " + h.id
		if !created.IsZero() {
			msg += " (created " + stamp(created) + ")"
		}
		return msg + fmt.Sprintf(" has no %s leaf", HandoffCreated)
	}
	msg := fmt.Sprintf("handoff %s is %s", h.id, h.status)
	if decided != nil {
		msg += " since " + stamp(*decided)
	}
	msg += fmt.Sprintf(" but the log has no %s leaf for it", finalLeaf(h.status))
	if latest != nil && latest.Size == size && decided != nil && latest.CreatedAt.Before(*decided) {
		msg += fmt.Sprintf("; the log ends at its newest checkpoint (%d leaves, signed %s), which predates that decision: its tail looks cut",
			latest.Size, stamp(latest.CreatedAt))
	}
	return msg
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
