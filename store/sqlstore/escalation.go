package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ony-ai/ony/store"
)

// sendStates mirrors the CHECK constraint on escalation_sends.state.
var sendStates = map[store.SendState]bool{
	store.SendSending: true, store.SendSent: true, store.SendDelivered: true, store.SendAnswered: true,
	store.SendNoAnswer: true, store.SendBusy: true, store.SendFailed: true, store.SendCapped: true,
	store.SendQuiet: true, store.SendSkipped: true, store.SendStepDone: true,
}

func (t *orgTx) PutLadder(ctx context.Context, l store.LadderVersion) error {
	src := l.Source
	if src == nil {
		src = []byte{} // NOT NULL: an empty source is still a (useless) version, not a missing one
	}
	t.ladderless = false
	_, err := t.exec(ctx, "PutLadder", t.org, l.Name, l.Version, src, l.CreatedBy, utc(l.CreatedAt))
	return err
}

func (t *orgTx) Ladders(ctx context.Context) ([]store.LadderVersion, error) {
	if t.ladderless {
		return nil, nil
	}
	rows, err := t.tx.QueryContext(ctx, t.s.query("Ladders"), t.org)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.LadderVersion
	for rows.Next() {
		l, err := scanLadder(rows, t.s)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) LadderByName(ctx context.Context, name string) (store.LadderVersion, error) {
	return scanLadder(t.tx.QueryRowContext(ctx, t.s.query("LadderByName"), t.org, name), t.s)
}

// LadderVersions is a ladder's history for the console.
func (t *orgTx) LadderVersions(ctx context.Context, name string) ([]store.LadderVersion, error) {
	return scanRows(ctx, t, "LadderVersions", scanLadder, t.org, name)
}

func scanLadder(r scanner, s *Store) (store.LadderVersion, error) {
	var l store.LadderVersion
	if err := r.Scan(&l.OrgID, &l.Name, &l.Version, &l.Source, &l.CreatedBy, &l.CreatedAt); err != nil {
		return l, s.mapErr(err)
	}
	l.CreatedAt = l.CreatedAt.UTC()
	if len(l.Source) == 0 {
		l.Source = nil
	}
	return l, nil
}

func (t *orgTx) ClaimSend(ctx context.Context, s store.Send) (store.Send, bool, error) {
	if s.State == "" {
		s.State = store.SendSending // a claim is, by default, a send about to be made
	}
	if !sendStates[s.State] {
		return store.Send{}, false, fmt.Errorf("store: unknown send state %q", s.State)
	}
	s.OrgID = t.org
	s.CreatedAt = utc(s.CreatedAt)
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	s.UpdatedAt = utc(s.UpdatedAt)
	res, err := t.exec(ctx, "ClaimSend", t.org, s.HandoffID, s.Key, s.Climb, s.Step, s.Attempt, s.Channel, s.Target,
		s.Provider, string(s.State), s.Ref, s.Detail, s.CreatedAt, s.UpdatedAt)
	if err != nil {
		return store.Send{}, false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return store.Send{}, false, err
	}
	if n == 1 {
		return s, true, nil
	}
	got, err := scanSend(t.tx.QueryRowContext(ctx, t.s.query("SendByKey"), t.org, s.HandoffID, s.Key), t.s)
	if err != nil {
		return store.Send{}, false, fmt.Errorf("store: send %s/%s conflicted but cannot be read: %w", s.HandoffID, s.Key, err)
	}
	return got, false, nil
}

func (t *orgTx) HandoffWithAgent(ctx context.Context, id string) (store.Handoff, string, error) {
	var agent string
	h, err := scanHandoff(scanAlso{t.tx.QueryRowContext(ctx, t.s.query("HandoffWithAgent"), t.org, id), []any{&agent}}, t.s)
	return h, agent, err
}

// scanAlso scans a row's further columns into also, after those its caller names.
type scanAlso struct {
	r    scanner
	also []any
}

func (s scanAlso) Scan(dest ...any) error { return s.r.Scan(append(dest, s.also...)...) }

func (t *orgTx) ClaimSends(ctx context.Context, ss []store.Send) ([]bool, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	const cols = 14
	args := make([]any, 0, cols*len(ss))
	at := make(map[string]int, len(ss))
	for i, s := range ss {
		if s.State == "" {
			s.State = store.SendSending
		}
		if !sendStates[s.State] {
			return nil, fmt.Errorf("store: unknown send state %q", s.State)
		}
		if i > 0 && s.HandoffID != ss[0].HandoffID {
			return nil, fmt.Errorf("store: ClaimSends takes the sends of one handoff")
		}
		if _, dup := at[s.Key]; dup {
			return nil, fmt.Errorf("store: send key %q twice in one claim", s.Key)
		}
		at[s.Key] = i
		s.CreatedAt = utc(s.CreatedAt)
		if s.UpdatedAt.IsZero() {
			s.UpdatedAt = s.CreatedAt
		}
		args = append(args, t.org, s.HandoffID, s.Key, s.Climb, s.Step, s.Attempt, s.Channel, s.Target,
			s.Provider, string(s.State), s.Ref, s.Detail, s.CreatedAt, utc(s.UpdatedAt))
	}
	row := ", (?" + strings.Repeat(", ?", cols-1) + ")"
	q := t.s.queryWith("ClaimSends", strings.Repeat(row, len(ss)-1)+" ON CONFLICT (org_id, handoff_id, key) DO NOTHING RETURNING key")
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	out := make([]bool, len(ss))
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, t.s.mapErr(err)
		}
		if i, ok := at[key]; ok {
			out[i] = true
		}
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) SetSendState(ctx context.Context, handoffID, key string, from []store.SendState, u store.SendUpdate) (bool, error) {
	if !sendStates[u.State] {
		return false, fmt.Errorf("store: unknown send state %q", u.State)
	}
	at := u.At
	if at.IsZero() {
		at = time.Now()
	}
	args := []any{string(u.State), u.Provider, u.Ref, u.Detail, utc(at), t.org, handoffID, key}
	q := t.s.query("SetSendState")
	if len(from) > 0 {
		for _, f := range from {
			if !sendStates[f] {
				return false, fmt.Errorf("store: unknown send state %q", f)
			}
			args = append(args, string(f))
		}
		q = t.s.queryWith("SetSendState", " AND state IN (?"+strings.Repeat(", ?", len(from)-1)+")")
	}
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, t.s.mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *systemTx) SendByRef(ctx context.Context, provider, ref string) (store.Send, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("SendByRef"), provider, ref)
	if err != nil {
		return store.Send{}, t.s.mapErr(err)
	}
	defer rows.Close()
	var found []store.Send
	for rows.Next() {
		s, err := scanSend(rows, t.s)
		if err != nil {
			return store.Send{}, err
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return store.Send{}, t.s.mapErr(err)
	}
	switch len(found) {
	case 0:
		return store.Send{}, store.ErrNotFound
	case 1:
		return found[0], nil
	}
	return store.Send{}, store.ErrConflict
}

func (t *orgTx) ListSends(ctx context.Context, handoffID string) ([]store.Send, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("ListSends"), t.org, handoffID)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.Send
	for rows.Next() {
		s, err := scanSend(rows, t.s)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, t.s.mapErr(rows.Err())
}

func scanSend(r scanner, s *Store) (store.Send, error) {
	var x store.Send
	var state string
	err := r.Scan(&x.OrgID, &x.HandoffID, &x.Key, &x.Climb, &x.Step, &x.Attempt, &x.Channel, &x.Target, &x.Provider,
		&state, &x.Ref, &x.Detail, &x.CreatedAt, &x.UpdatedAt)
	if err != nil {
		return x, s.mapErr(err)
	}
	x.State = store.SendState(state)
	x.CreatedAt, x.UpdatedAt = x.CreatedAt.UTC(), x.UpdatedAt.UTC()
	return x, nil
}

func (t *orgTx) Inbox(ctx context.Context, userID string, limit int) ([]store.Handoff, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	rows, err := t.tx.QueryContext(ctx, t.s.query("Inbox"), t.org, userID, limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	return scanHandoffs(rows, t.s)
}

func (t *orgTx) CreateDecisionToken(ctx context.Context, d store.DecisionToken) error {
	if (d.UserID == "") == (d.Target == "") {
		return fmt.Errorf("store: a decision token names a person or a team destination, not both or neither")
	}
	_, err := t.exec(ctx, "CreateDecisionToken", t.org, d.Hash, d.HandoffID, nullString(d.UserID), d.Target, d.Channel,
		utc(d.CreatedAt), utc(d.ExpiresAt), nullTime(d.UsedAt))
	return err
}

func (t *orgTx) UseDecisionToken(ctx context.Context, hash []byte, at time.Time) (bool, error) {
	res, err := t.exec(ctx, "UseDecisionToken", utc(at), t.org, hash, utc(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *systemTx) DecisionTokenByHash(ctx context.Context, hash []byte) (store.DecisionToken, error) {
	d, err := scanDecisionToken(t.tx.QueryRowContext(ctx, t.s.query("DecisionTokenByHash"), hash))
	if err != nil {
		return store.DecisionToken{}, t.s.mapErr(err)
	}
	return d, nil
}

func (t *systemTx) OpenDecisionTokensTo(ctx context.Context, contactKind, address, channel string, now time.Time) ([]store.DecisionToken, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("OpenDecisionTokensTo"), contactKind, address, channel, utc(now))
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.DecisionToken
	for rows.Next() {
		d, err := scanDecisionToken(rows)
		if err != nil {
			return nil, t.s.mapErr(err)
		}
		out = append(out, d)
	}
	return out, t.s.mapErr(rows.Err())
}

func scanDecisionToken(r interface{ Scan(...any) error }) (store.DecisionToken, error) {
	var d store.DecisionToken
	var used sql.NullTime
	var userID sql.NullString
	if err := r.Scan(&d.OrgID, &d.Hash, &d.HandoffID, &userID, &d.Target, &d.Channel, &d.CreatedAt, &d.ExpiresAt, &used); err != nil {
		return store.DecisionToken{}, err
	}
	d.UserID = userID.String
	d.CreatedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		d.UsedAt = &u
	}
	return d, nil
}
