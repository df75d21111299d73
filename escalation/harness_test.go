package escalation_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/simulated"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

var ctx = context.Background()

// The harness runs the engine against a real database with a fake clock. Jobs that transactions
// enqueue are captured instead of going to River, and run in schedule order as the clock advances:
// the same code paths as production, minus River's own timing.

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t
	}
	c.mu.Unlock()
}

type job struct {
	args river.JobArgs
	at   time.Time
	seq  int
	id   int64 // River's job id: kept when the job is snoozed or rescued
}

type captureStore struct {
	store.Store
	clock *fakeClock
	mu    sync.Mutex
	jobs  []job
	seq   int
	ids   atomic.Int64 // job ids, as River's are assigned at the insert
	// beforeTx, if set, is called at the start of every InOrg (a test counts or holds transactions).
	beforeTx func()
}

func (c *captureStore) InOrg(ctx context.Context, orgID string, fn func(tx store.OrgTx) error) error {
	if c.beforeTx != nil {
		c.beforeTx()
	}
	var tx *captureTx
	err := c.Store.InOrg(ctx, orgID, func(otx store.OrgTx) error {
		tx = &captureTx{OrgTx: otx, c: c}
		return fn(tx)
	})
	if err == nil {
		c.mu.Lock()
		for _, j := range tx.buf {
			c.seq++
			j.seq = c.seq
			c.jobs = append(c.jobs, j)
		}
		c.jobs = slices.DeleteFunc(c.jobs, func(j job) bool { return slices.Contains(tx.cancelled, j.id) })
		c.mu.Unlock()
	}
	return err
}

// captureTx holds the jobs a transaction enqueues, and those it cancels, until it commits.
type captureTx struct {
	store.OrgTx
	c         *captureStore
	buf       []job
	cancelled []int64
}

func (t *captureTx) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := t.EnqueueID(ctx, args, opts)
	return err
}

func (t *captureTx) EnqueueID(_ context.Context, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	at := t.c.clock.now()
	if opts != nil && !opts.ScheduledAt.IsZero() {
		at = opts.ScheduledAt
	}
	id := t.c.ids.Add(1)
	t.buf = append(t.buf, job{args: args, at: at, id: id})
	return id, nil
}

// CancelJob cancels a job of this transaction, or, once it commits, one still queued.
func (t *captureTx) CancelJob(_ context.Context, id int64) (bool, error) {
	n := len(t.buf)
	if t.buf = slices.DeleteFunc(t.buf, func(j job) bool { return j.id == id }); len(t.buf) < n {
		return true, nil
	}
	t.c.mu.Lock()
	queued := slices.ContainsFunc(t.c.jobs, func(j job) bool { return j.id == id })
	t.c.mu.Unlock()
	if queued {
		t.cancelled = append(t.cancelled, id)
	}
	return queued, nil
}

// requeue puts a job back to run at at (a snoozed or rescued job), as a new job if id is 0.
func (c *captureStore) requeue(args river.JobArgs, at time.Time, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.jobs = append(c.jobs, job{args: args, at: at, seq: c.seq, id: cmp.Or(id, c.ids.Add(1))})
}

// queued is a copy of the jobs waiting to run.
func (c *captureStore) queued() []job {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.jobs)
}

// next pops the earliest job due by until.
func (c *captureStore) next(until time.Time) (job, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.SliceStable(c.jobs, func(i, j int) bool {
		if !c.jobs[i].at.Equal(c.jobs[j].at) {
			return c.jobs[i].at.Before(c.jobs[j].at)
		}
		return c.jobs[i].seq < c.jobs[j].seq
	})
	if len(c.jobs) == 0 || c.jobs[0].at.After(until) {
		return job{}, false
	}
	j := c.jobs[0]
	c.jobs = c.jobs[1:]
	return j, true
}

type harness struct {
	t     *testing.T
	st    *captureStore
	clock *fakeClock
	start time.Time
	svc   *handoff.Service
	eng   *escalation.Engine
	coord coord.Coord
	orgID string
	dev   handoff.Actor
	users map[string]store.User
	sims  map[string]*simulated.Provider
	// sent records every notification with the fake time it happened at, console inbox rows too
	// (noteInbox), though no provider is called for those.
	mu       sync.Mutex
	sent     []sent
	handoffs []string        // created, in order
	inboxed  map[string]bool // handoff/key of the inbox rows in sent
	// hold, if set, may take a due job instead of running it (a test standing in for a crash).
	hold func(args river.JobArgs) bool
	// snoozes counts the jobs that asked to be run again shortly (a rung or end waiting its turn).
	snoozes int
	// expiredAt is the fake time the handoff last expired by the ladder's end.
	expiredAt time.Duration
	// crashes counts the rungs stopped by a crash (escalation.SetCrashAfterCommit); the job runner
	// rescues each after rescueAfter (45 s if 0), or never if rescueAfter is negative.
	crashes     int
	rescueAfter time.Duration
}

type sent struct {
	at      time.Duration
	channel string
	to      string
	n       channel.Notification
	inbox   bool // a console inbox row (noteInbox): n holds only where it is in the ladder
}

type harnessOpts struct {
	ladders []string // YAML documents
	limits  map[string]escalation.Limit
	// extra providers, e.g. a second sms provider for failover
	extra []channel.Channel
	start time.Time
	// dialect is "sqlite" (the default) or "postgres".
	dialect string
	// stepUp is the engine's step-up policy (escalation.Deps.StepUp); nil means none.
	stepUp func(ctx context.Context, orgID, risk string) (bool, error)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.start.IsZero() {
		o.start = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	}
	clk := &fakeClock{t: o.start}
	if o.dialect == "" {
		o.dialect = "sqlite"
	}
	st := &captureStore{Store: testdb.Open(t, o.dialect), clock: clk}
	kr, err := keyring.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	al := audit.New(keys, "ony-test", func(r string) bool { return risk.KnownReason(risk.Reason(r)) }, clk.now)
	co := coord.NewMemory(nil)
	t.Cleanup(func() { co.Close() })
	h := &harness{t: t, st: st, clock: clk, start: o.start, coord: co, users: map[string]store.User{},
		sims: map[string]*simulated.Provider{}}
	chs := []channel.Channel{h.record(channel.Console{}), h.record(bridge{})}
	for _, k := range []string{"slack", "telegram", "sms", "call"} {
		s := simulated.New(k, "sim", testdb.Discard)
		h.sims[k] = s
		chs = append(chs, h.record(s))
	}
	for _, c := range o.extra {
		chs = append(chs, h.record(c))
	}
	reg, err := channel.NewRegistry(app.BuiltinKinds(), chs...)
	if err != nil {
		t.Fatal(err)
	}
	var ls []*escalation.Ladder
	for i, doc := range o.ladders {
		parsed, err := escalation.Parse([]byte(doc), "test.yaml", app.BuiltinKinds())
		if err != nil {
			t.Fatalf("ladder %d: %v", i, err)
		}
		ls = append(ls, parsed...)
	}
	set, err := escalation.NewSet(ls)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = escalation.New(escalation.Deps{Store: st, Audit: al, Coord: co, Channels: reg, Ladders: set,
		Logger: testdb.Discard, Clock: clk.now, Redact: handoff.TextRedactor(nil, kr), StepUp: o.stepUp},
		escalation.Config{PublicURL: "https://ony.test", Limits: o.limits})
	h.svc = handoff.NewService(handoff.Deps{Store: st, Audit: al, Risk: risk.Default(), Keyring: kr, Coord: co,
		Logger: testdb.Discard, Clock: clk.now, Escalator: h.eng}, handoff.Config{DefaultTimeout: time.Hour})

	h.orgID = uuid.NewString()
	dev := store.Device{OrgID: h.orgID, ID: uuid.NewString(), Name: "agent", TokenHash: []byte(uuid.NewString()), CallbackKey: []byte("k"), CreatedAt: o.start}
	must(t, st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: h.orgID, Name: "acme", MaxTimeout: 24 * time.Hour, CreatedAt: o.start}); err != nil {
			return err
		}
		return tx.CreateDevice(ctx, dev)
	}))
	h.dev = handoff.Actor{OrgID: h.orgID, Kind: store.ActorDevice, ID: dev.ID, Name: dev.Name}
	return h
}

// bridge is the webhook bridge "bridge", the only one ladders may target here.
type bridge struct{}

func (bridge) Kind() string         { return "webhook" }
func (bridge) Provider() string     { return "builtin" }
func (bridge) Has(name string) bool { return name == "bridge" }
func (bridge) Notify(context.Context, channel.Notification) (channel.Delivery, error) {
	return channel.Delivery{Ref: "bridge", State: store.SendSent}, nil
}
func (bridge) Update(context.Context, channel.Update) error { return nil }

// recorder notes the fake time of every notification a channel makes.
type recorder struct {
	channel.Channel
	h *harness
}

func (r recorder) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	d, err := r.Channel.Notify(ctx, n)
	if err == nil {
		r.h.mu.Lock()
		r.h.sent = append(r.h.sent, sent{at: r.h.clock.now().Sub(r.h.start), channel: r.Kind() + "/" + r.Provider(), to: n.Recipient.Name, n: n})
		r.h.mu.Unlock()
	}
	return d, err
}

// record wraps c to note its notifications; a channel with destinations keeps them.
func (h *harness) record(c channel.Channel) channel.Channel {
	if d, ok := c.(channel.Destinations); ok {
		return struct {
			recorder
			channel.Destinations
		}{recorder{Channel: c, h: h}, d}
	}
	return recorder{Channel: c, h: h}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// person adds a member (or admin) with contact methods.
func (h *harness) person(name string, edit func(u *store.User)) store.User {
	h.t.Helper()
	u := store.User{OrgID: h.orgID, ID: uuid.NewString(), Email: name + "@example.com", Name: name, PasswordHash: "x",
		Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: h.start}
	if edit != nil {
		edit(&u)
	}
	must(h.t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error { return tx.CreateUser(ctx, u) }))
	h.users[name] = u
	return u
}

func (h *harness) create(req handoff.CreateRequest) store.Handoff {
	h.t.Helper()
	if req.Title == "" {
		req.Title = "Deploy api"
	}
	res, err := h.svc.Create(ctx, h.dev, req, "")
	must(h.t, err)
	// The first rung's sends go on after the create returns: the harness lets them finish first.
	must(h.t, h.eng.Wait(ctx))
	h.mu.Lock()
	h.handoffs = append(h.handoffs, res.Handoff.ID)
	h.mu.Unlock()
	h.noteInbox()
	// The handoff service's expiry sweep ends it at its deadline (it queues no job for it): run here
	// as the expiry job it replaced.
	h.st.requeue(handoff.ExpireArgs{OrgID: res.Handoff.OrgID, HandoffID: res.Handoff.ID}, res.Handoff.ExpiresAt, 0)
	return res.Handoff
}

// advance runs every job due within d, in schedule order, moving the clock to each job's time.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	until := h.clock.now().Add(d)
	for {
		j, ok := h.st.next(until)
		if !ok {
			h.clock.set(until)
			return
		}
		h.clock.set(j.at)
		if h.hold != nil && h.hold(j.args) {
			continue
		}
		err := h.run(j)
		h.noteInbox()
		if errors.Is(err, handoff.ErrLadderUnderWay) || errors.Is(err, escalation.ErrRungUnderWay) {
			// What the job runner does with a snoozed job.
			h.snoozes++
			h.st.requeue(j.args, h.clock.now().Add(time.Second), j.id)
			continue
		}
		if errors.Is(err, escalation.ErrSimulatedCrash) {
			// The job stays running in the dead process's name until the runner rescues it.
			h.crashes++
			if h.rescueAfter >= 0 {
				h.st.requeue(j.args, h.clock.now().Add(cmp.Or(h.rescueAfter, 45*time.Second)), j.id)
			}
			continue
		}
		must(h.t, err)
	}
}

func (h *harness) run(j job) error {
	switch a := j.args.(type) {
	case escalation.StepArgs:
		return h.eng.RunStepJob(ctx, a, j.id)
	case escalation.SendArgs:
		return h.eng.RunSend(ctx, a, true)
	case escalation.UpdateArgs:
		return h.eng.RunUpdate(ctx, a)
	case handoff.ExpireArgs:
		if a.Ladder {
			err := h.svc.ExpireExhausted(ctx, a.OrgID, a.HandoffID)
			if err == nil {
				h.expiredAt = h.clock.now().Sub(h.start)
			}
			return err
		}
		_, err := h.svc.Expire(ctx, a.OrgID, a.HandoffID)
		return err
	case handoff.CallbackArgs, handoff.SummarizeArgs:
		return nil
	}
	h.t.Fatalf("unexpected job %T", j.args)
	return nil
}

// log is the notifications so far as "+5m0s sms/sim Ana" lines.
func (h *harness) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	from := 0
	for i, s := range h.sent {
		out = append(out, "+"+s.at.String()+" "+s.channel+" "+s.to)
		// A rung makes its sends concurrently: within one rung's run they have no order.
		if i+1 == len(h.sent) || !sameRun(s, h.sent[i+1]) {
			slices.Sort(out[from:])
			from = i + 1
		}
	}
	return out
}

func sameRun(a, b sent) bool {
	return a.at == b.at && a.n.HandoffID == b.n.HandoffID && a.n.Climb == b.n.Climb && a.n.Step == b.n.Step && a.n.Attempt == b.n.Attempt
}

func (h *harness) get(id string) store.Handoff {
	h.t.Helper()
	var out store.Handoff
	must(h.t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.HandoffByID(ctx, id)
		return err
	}))
	return out
}

// noteInbox adds to sent the console inbox rows written since it last looked, at the fake time of
// their rows: a rung writes those delivered and calls no provider (channel.Kind.Inbox).
func (h *harness) noteInbox() {
	h.t.Helper()
	h.mu.Lock()
	ids := slices.Clone(h.handoffs)
	h.mu.Unlock()
	for _, id := range ids {
		for _, s := range h.sends(id) {
			if s.Channel != "console" || s.State != store.SendDelivered {
				continue
			}
			name := s.Target
			for _, u := range h.users {
				if u.ID == s.Target {
					name = u.Name
				}
			}
			h.mu.Lock()
			if h.inboxed == nil {
				h.inboxed = map[string]bool{}
			}
			if k := id + "/" + s.Key; !h.inboxed[k] {
				h.inboxed[k] = true
				h.sent = append(h.sent, sent{at: s.CreatedAt.Sub(h.start), channel: "console/" + s.Provider, to: name,
					n: channel.Notification{HandoffID: id, Climb: s.Climb, Step: s.Step, Attempt: s.Attempt}, inbox: true})
			}
			h.mu.Unlock()
		}
	}
}

func (h *harness) sends(id string) []store.Send {
	h.t.Helper()
	s, err := h.eng.Timeline(ctx, h.orgID, id)
	must(h.t, err)
	return slices.DeleteFunc(s, func(x store.Send) bool { return x.State == store.SendStepDone })
}

func (h *harness) member(name string) handoff.Actor {
	u := h.users[name]
	return handoff.Actor{OrgID: h.orgID, Kind: store.ActorUser, ID: u.ID, Name: u.Name, Role: u.Role}
}
