package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/store"
)

type orgTx struct {
	s   *Store
	tx  *sql.Tx
	org string
	// dueQueues are the queues of the jobs due at once the transaction inserted: after the commit
	// the store wakes its workers and announces them to other replicas.
	dueQueues []string
	// readOnly is set in ReadOrg, where the database refuses writes; Enqueue, which writes through
	// River, is refused before it gets there so its error says so too.
	readOnly bool
	// ladderless is set when Org found no stored ladders, until PutLadder stores one: Ladders then
	// answers without a round trip (a create reads both, and most orgs have none).
	ladderless bool
}

type systemTx struct {
	s  *Store
	tx *sql.Tx
}

func (t *orgTx) exec(ctx context.Context, name string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(ctx, t.s.query(name), args...)
	return res, t.s.mapErr(err)
}

func (t *orgTx) OrgID() string { return t.org }

func (t *orgTx) Org(ctx context.Context) (store.Org, error) {
	var ladders bool
	o, err := scanOrg(scanAlso{t.tx.QueryRowContext(ctx, t.s.query("OrgByID"), t.org), []any{&ladders}}, t.s)
	t.ladderless = err == nil && !ladders
	return o, err
}

func (t *orgTx) LockOrg(ctx context.Context) (store.Org, error) {
	return scanOrg(t.tx.QueryRowContext(ctx, t.s.query("LockOrg"), t.org), t.s)
}

func (t *orgTx) CreateUser(ctx context.Context, u store.User) error {
	groups, err := encodeGroups(u.Groups)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, "CreateUser", t.org, u.ID, u.Email, u.Name, u.PasswordHash, string(u.Role),
		u.Timezone, u.Active, utc(u.CreatedAt), u.QuietHours, groups)
	if err != nil {
		return err
	}
	for _, c := range u.Contacts {
		c.UserID = u.ID
		if err := t.SetContact(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (t *orgTx) UpdateUser(ctx context.Context, u store.User) error {
	groups, err := encodeGroups(u.Groups)
	if err != nil {
		return err
	}
	res, err := t.exec(ctx, "UpdateUser", u.Name, string(u.Role), u.Timezone, u.Active, u.QuietHours, groups, t.org, u.ID)
	return mustAffect(res, err)
}

func (t *orgTx) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res, err := t.exec(ctx, "SetPasswordHash", hash, t.org, userID)
	return mustAffect(res, err)
}

func (t *orgTx) UserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(t.tx.QueryRowContext(ctx, t.s.query("UserByID"), t.org, id), t.s)
	if err != nil {
		return u, err
	}
	u.Contacts, err = queryContacts(ctx, t.tx, t.s, "UserContacts", t.org, id)
	return u, err
}

func (t *orgTx) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("ListUsers"), t.org)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.User
	var us userScan
	var kind, address sql.NullString
	var verified, created sql.NullTime
	dest := append(us.dest(), &kind, &address, &verified, &created)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, t.s.mapErr(err)
		}
		// A user's rows are consecutive (the query orders by user); the first makes the user.
		if n := len(out); n == 0 || out[n-1].ID != us.u.ID {
			u, err := us.user()
			if err != nil {
				return nil, err
			}
			out = append(out, u)
		}
		if kind.Valid {
			u := &out[len(out)-1]
			c := store.Contact{OrgID: u.OrgID, UserID: u.ID, Kind: kind.String, Address: address.String, CreatedAt: created.Time.UTC()}
			if verified.Valid {
				v := verified.Time.UTC()
				c.VerifiedAt = &v
			}
			u.Contacts = append(u.Contacts, c)
		}
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) SetContact(ctx context.Context, c store.Contact) error {
	if c.Kind == "" || c.Address == "" {
		return fmt.Errorf("store: a contact needs a kind and an address")
	}
	_, err := t.exec(ctx, "SetContact", t.org, c.UserID, c.Kind, c.Address, nullTime(c.VerifiedAt), utc(c.CreatedAt))
	return err
}

func (t *orgTx) DeleteContact(ctx context.Context, userID, kind string) error {
	_, err := t.exec(ctx, "DeleteContact", t.org, userID, kind)
	return err
}

func queryContacts(ctx context.Context, tx *sql.Tx, s *Store, query string, args ...any) ([]store.Contact, error) {
	rows, err := tx.QueryContext(ctx, s.query(query), args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []store.Contact
	for rows.Next() {
		var c store.Contact
		var verified sql.NullTime
		if err := rows.Scan(&c.OrgID, &c.UserID, &c.Kind, &c.Address, &verified, &c.CreatedAt); err != nil {
			return nil, s.mapErr(err)
		}
		c.CreatedAt = c.CreatedAt.UTC()
		if verified.Valid {
			v := verified.Time.UTC()
			c.VerifiedAt = &v
		}
		out = append(out, c)
	}
	return out, s.mapErr(rows.Err())
}

func (t *orgTx) CreateDevice(ctx context.Context, d store.Device) error {
	_, err := t.exec(ctx, "CreateDevice", t.org, d.ID, d.Name, d.TokenHash, d.CallbackKey, utc(d.CreatedAt), nullTime(d.RevokedAt))
	return err
}

func (t *orgTx) DeviceByID(ctx context.Context, id string) (store.Device, error) {
	return scanDevice(t.tx.QueryRowContext(ctx, t.s.query("DeviceByID"), t.org, id), t.s)
}

// scanRows runs the named query in the transaction and scans every row it returns with scan.
func scanRows[T any](ctx context.Context, t *orgTx, name string, scan func(scanner, *Store) (T, error), args ...any) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query(name), args...)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows, t.s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, t.s.mapErr(rows.Err())
}

// ListDevices is the console's device list.
func (t *orgTx) ListDevices(ctx context.Context) ([]store.Device, error) {
	return scanRows(ctx, t, "ListDevices", scanDevice, t.org)
}

// TouchDevice records that the device's token was used at at.
func (t *orgTx) TouchDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "TouchDevice", utc(at), t.org, id)
	return mustAffect(res, err)
}

func (t *orgTx) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "RevokeDevice", utc(at), t.org, id)
	return mustAffect(res, err)
}

func (t *orgTx) CreateSession(ctx context.Context, s store.Session) error {
	if s.PublicID == "" {
		s.PublicID = newPublicID()
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = s.CreatedAt
	}
	_, err := t.exec(ctx, "CreateSession", t.org, s.IDHash, s.UserID, utc(s.CreatedAt), utc(s.ExpiresAt),
		s.PublicID, utc(s.LastSeenAt), s.UserAgent)
	return err
}

func (t *orgTx) DeleteSession(ctx context.Context, idHash []byte) error {
	res, err := t.exec(ctx, "DeleteSession", t.org, idHash)
	return mustAffect(res, err)
}

func (t *orgTx) DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	if keep == nil {
		keep = []byte{} // no session id hashes to empty; NULL would make the comparison match nothing
	}
	res, err := t.exec(ctx, "DeleteUserSessions", t.org, userID, keep)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *orgTx) InsertHandoff(ctx context.Context, h store.Handoff) error {
	args, err := t.handoffArgs(h)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, "InsertHandoff", args...)
	return err
}

func (t *orgTx) handoffArgs(h store.Handoff) ([]any, error) {
	reasons, opts, labels, err := encodeHandoffJSON(h)
	if err != nil {
		return nil, err
	}
	return []any{t.org, h.ID, h.DeviceID, h.Action, h.Title, h.Summary, h.Risk,
		reasons, opts, labels, h.PayloadKind, h.PayloadSize, h.PayloadSealed, h.CallbackURL, string(h.Status),
		utc(h.CreatedAt), utc(h.ExpiresAt), h.Gist, h.LadderName, h.LadderVersion, string(h.Ladder)}, nil
}

// InsertHandoffLogged implements store.OrgTx: on PostgreSQL the handoff's insert rides in the record's
// as a data-modifying WITH (loggedHandoff); elsewhere they are the two statements.
func (t *orgTx) InsertHandoffLogged(ctx context.Context, h store.Handoff, at time.Time, record []byte) error {
	q, one := t.s.q[loggedHandoff]
	if !one {
		if err := t.InsertHandoff(ctx, h); err != nil {
			return err
		}
		return t.AuditEnqueue(ctx, at, record)
	}
	args, err := t.handoffArgs(h)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, q, append(args, t.org, record, utc(at), t.org)...)
	return queuedOne(res, t.s.mapErr(err))
}

func (t *orgTx) HandoffByID(ctx context.Context, id string) (store.Handoff, error) {
	return scanHandoff(t.tx.QueryRowContext(ctx, t.s.query("HandoffByID"), t.org, id), t.s)
}

func (t *orgTx) HandoffPayload(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := t.tx.QueryRowContext(ctx, t.s.query("HandoffPayload"), t.org, id).Scan(&b)
	return b, t.s.mapErr(err)
}

func (t *orgTx) ListHandoffs(ctx context.Context, f store.HandoffFilter) ([]store.Handoff, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	name, args := "ListHandoffs", []any{t.org}
	switch {
	case f.DeviceID != "" && f.Status != "":
		name, args = "ListHandoffsByDeviceStatus", append(args, f.DeviceID, string(f.Status))
	case f.DeviceID != "":
		name, args = "ListHandoffsByDevice", append(args, f.DeviceID)
	case f.Status != "":
		name, args = "ListHandoffsByStatus", append(args, string(f.Status))
	}
	rows, err := t.tx.QueryContext(ctx, t.s.query(name), append(args, limit)...)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	return scanHandoffs(rows, t.s)
}

func scanHandoffs(rows *sql.Rows, s *Store) ([]store.Handoff, error) {
	defer rows.Close()
	var out []store.Handoff
	for rows.Next() {
		h, err := scanHandoff(rows, s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, s.mapErr(rows.Err())
}

func (t *orgTx) FinishHandoff(ctx context.Context, id string, status store.Status, d store.Decision) (bool, error) {
	if !status.Final() || !status.Valid() {
		return false, fmt.Errorf("store: %q is not a final status", status)
	}
	res, err := t.exec(ctx, "FinishHandoff", string(status), d.OptionID, string(d.ByKind), d.ByID, d.ByName,
		d.Channel, d.Comment, utc(d.DecidedAt), t.org, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *orgTx) SetHandoffGist(ctx context.Context, id, gist string) error {
	res, err := t.exec(ctx, "SetHandoffGist", gist, t.org, id)
	return mustAffect(res, err)
}

func (t *orgTx) IdempotencyRecord(ctx context.Context, deviceID, key string) (store.Idempotency, error) {
	var r store.Idempotency
	err := t.tx.QueryRowContext(ctx, t.s.query("IdempotencyRecord"), t.org, deviceID, key).
		Scan(&r.OrgID, &r.DeviceID, &r.Key, &r.RequestHash, &r.HandoffID, &r.CreatedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, t.s.mapErr(err)
}

func (t *orgTx) PutIdempotencyRecord(ctx context.Context, r store.Idempotency) error {
	_, err := t.exec(ctx, "PutIdempotencyRecord", t.org, r.DeviceID, r.Key, r.RequestHash, r.HandoffID, utc(r.CreatedAt))
	return err
}

func (t *orgTx) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := t.EnqueueID(ctx, args, opts)
	return err
}

func (t *orgTx) EnqueueID(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	if t.readOnly {
		return 0, fmt.Errorf("store: enqueue %s: %w", args.Kind(), store.ErrReadOnly)
	}
	id, due, queue, err := t.s.enqueue(ctx, t.tx, args, opts)
	if err != nil {
		return 0, err
	}
	if due.IsZero() {
		if !slices.Contains(t.dueQueues, queue) {
			t.dueQueues = append(t.dueQueues, queue)
		}
	} else if !beyondHorizon(due, time.Now()) {
		// Fires after the commit (or after a rollback, which costs one empty fetch). A job due later
		// gets its timer when it is promoted (wake.go).
		t.s.wake.at(due)
	}
	return id, nil
}

func (t *orgTx) CancelJob(ctx context.Context, id int64) (bool, error) {
	if t.readOnly {
		return false, fmt.Errorf("store: cancel job: %w", store.ErrReadOnly)
	}
	res, err := t.exec(ctx, "CancelJob", id, t.org)
	if err != nil {
		return false, fmt.Errorf("store: cancel job: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *systemTx) CountOrgs(ctx context.Context) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, t.s.query("CountOrgs")).Scan(&n)
	return n, t.s.mapErr(err)
}

func (t *orgTx) CreateOrg(ctx context.Context, o store.Org) error {
	_, err := t.exec(ctx, "CreateOrg", t.org, o.Name, int64(o.MaxTimeout/time.Second), utc(o.CreatedAt))
	return err
}

func (t *systemTx) UserByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := scanUser(t.tx.QueryRowContext(ctx, t.s.query("UserByEmail"), email), t.s)
	if err != nil {
		return u, err
	}
	u.Contacts, err = queryContacts(ctx, t.tx, t.s, "UserContacts", u.OrgID, u.ID)
	return u, err
}

func (t *systemTx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, t.s.query("DeleteExpiredSessions"), utc(now))
	if err != nil {
		return 0, t.s.mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

type scanner interface{ Scan(dest ...any) error }

func scanOrg(r scanner, s *Store) (store.Org, error) {
	var o store.Org
	var secs int64
	var risks string
	var retention sql.NullInt64
	if err := r.Scan(&o.ID, &o.Name, &secs, &o.CreatedAt, &risks, &retention); err != nil {
		return o, s.mapErr(err)
	}
	o.MaxTimeout = time.Duration(secs) * time.Second
	o.StepUpRisks = splitList(risks)
	o.PayloadRetentionDays = int(retention.Int64)
	o.CreatedAt = o.CreatedAt.UTC()
	return o, nil
}

func scanUser(r scanner, s *Store) (store.User, error) {
	var us userScan
	if err := r.Scan(us.dest()...); err != nil {
		return us.u, s.mapErr(err)
	}
	return us.user()
}

// userScan holds a user's columns as scanned; user makes the user of them.
type userScan struct {
	u            store.User
	role, groups string
	active       sql.NullTime
}

func (us *userScan) dest() []any {
	u := &us.u
	return []any{&u.OrgID, &u.ID, &u.Email, &u.Name, &u.PasswordHash, &us.role, &u.Timezone, &u.Active, &u.CreatedAt,
		&u.QuietHours, &us.groups, &us.active}
}

func (us *userScan) user() (store.User, error) {
	u := us.u
	if us.active.Valid {
		at := us.active.Time.UTC()
		u.LastActiveAt = &at
	}
	u.Role = store.Role(us.role)
	u.CreatedAt = u.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(us.groups), &u.Groups); err != nil {
		return u, fmt.Errorf("store: user %s groups: %w", u.ID, err)
	}
	if len(u.Groups) == 0 {
		u.Groups = nil // "[]" and nil are the same: no groups
	}
	return u, nil
}

// encodeGroups stores a user's groups as a JSON array, never null, so the column reads back uniformly.
func encodeGroups(gs []string) (string, error) {
	if gs == nil {
		gs = []string{}
	}
	b, err := json.Marshal(gs)
	if err != nil {
		return "", fmt.Errorf("store: user groups: %w", err)
	}
	return string(b), nil
}

func scanDevice(r scanner, s *Store) (store.Device, error) {
	var d store.Device
	var revoked, used sql.NullTime
	if err := r.Scan(&d.OrgID, &d.ID, &d.Name, &d.TokenHash, &d.CallbackKey, &d.CreatedAt, &revoked, &used); err != nil {
		return d, s.mapErr(err)
	}
	d.CreatedAt = d.CreatedAt.UTC()
	if revoked.Valid {
		t := revoked.Time.UTC()
		d.RevokedAt = &t
	}
	if used.Valid {
		t := used.Time.UTC()
		d.LastUsedAt = &t
	}
	return d, nil
}

func scanHandoff(r scanner, s *Store) (store.Handoff, error) {
	var h store.Handoff
	var reasons, opts, labels, status, ladder string
	var d store.Decision
	var byKind string
	var decidedAt sql.NullTime
	err := r.Scan(&h.OrgID, &h.ID, &h.DeviceID, &h.Action, &h.Title, &h.Summary, &h.Risk, &reasons, &opts, &labels,
		&h.PayloadKind, &h.PayloadSize, &h.PayloadKept, &h.CallbackURL, &status, &h.CreatedAt, &h.ExpiresAt,
		&d.OptionID, &byKind, &d.ByID, &d.ByName, &d.Channel, &d.Comment, &decidedAt, &h.Gist,
		&h.LadderName, &h.LadderVersion, &ladder)
	if err != nil {
		return h, s.mapErr(err)
	}
	if ladder != "" {
		h.Ladder = []byte(ladder)
	}
	h.Status = store.Status(status)
	h.CreatedAt, h.ExpiresAt = h.CreatedAt.UTC(), h.ExpiresAt.UTC()
	if err := json.Unmarshal([]byte(reasons), &h.RiskReasons); err != nil {
		return h, fmt.Errorf("store: handoff %s risk_reasons: %w", h.ID, err)
	}
	if err := json.Unmarshal([]byte(opts), &h.Options); err != nil {
		return h, fmt.Errorf("store: handoff %s options: %w", h.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &h.Labels); err != nil {
		return h, fmt.Errorf("store: handoff %s labels: %w", h.ID, err)
	}
	if decidedAt.Valid {
		d.ByKind = store.ActorKind(byKind)
		d.DecidedAt = decidedAt.Time.UTC()
		h.Decision = &d
	}
	return h, nil
}

func encodeHandoffJSON(h store.Handoff) (reasons, opts, labels string, err error) {
	enc := func(v any) string {
		if err != nil {
			return ""
		}
		var b []byte
		b, err = json.Marshal(v)
		return string(b)
	}
	rs := h.RiskReasons
	if rs == nil {
		rs = []string{}
	}
	ls := h.Labels
	if ls == nil {
		ls = map[string]string{}
	}
	reasons, opts, labels = enc(rs), enc(h.Options), enc(ls)
	return reasons, opts, labels, err
}

func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// utc normalises times so both databases store and compare the same instant the same way.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: utc(*t), Valid: true}
}

func nowText() string { return time.Now().UTC().Format(time.RFC3339Nano) }
