package handoff_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

// BenchmarkDecisionWakesWaiter measures issue 12's target on one replica: from the start of Decide to
// the return of a Wait on the same handoff, in an org with 40 k pending handoffs, on both databases,
// idle and while two agents create handoffs without pause. It reports p50 and p99 (ms).
func BenchmarkDecisionWakesWaiter(b *testing.B) {
	for _, d := range testdb.Dialects {
		for _, load := range []int{0, 2} {
			b.Run(fmt.Sprintf("%s/creators=%d", d, load), func(b *testing.B) { benchWake(b, d, load) })
		}
	}
}

// waitRead signals when a transaction that read the watched handoff ends, so the benchmark decides
// only once the waiter has read it pending and blocks on its subscription.
type waitRead struct {
	store.Store
	read  chan struct{}
	watch *atomic.Pointer[string]
}

func (w waitRead) ReadOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	return w.tx(ctx, orgID, fn, w.Store.ReadOrg)
}

func (w waitRead) InOrg(ctx context.Context, orgID string, fn func(store.OrgTx) error) error {
	return w.tx(ctx, orgID, fn, w.Store.InOrg)
}

func (w waitRead) tx(ctx context.Context, orgID string, fn func(store.OrgTx) error, run func(context.Context, string, func(store.OrgTx) error) error) error {
	var saw bool
	err := run(ctx, orgID, func(tx store.OrgTx) error { return fn(watchTx{OrgTx: tx, w: w, saw: &saw}) })
	if saw {
		select {
		case w.read <- struct{}{}:
		default:
		}
	}
	return err
}

type watchTx struct {
	store.OrgTx
	w   waitRead
	saw *bool
}

func (t watchTx) HandoffByID(ctx context.Context, id string) (store.Handoff, error) {
	if p := t.w.watch.Load(); p != nil && *p == id {
		*t.saw = true
	}
	return t.OrgTx.HandoffByID(ctx, id)
}

// BenchmarkCreateSQLite is SQLite ingest: creates from 8 agents at once into an org that has 40 k
// pending handoffs, in creates per second.
func BenchmarkCreateSQLite(b *testing.B) { benchCreate(b, "sqlite") }

// BenchmarkCreatePostgres is BenchmarkCreateSQLite on PostgreSQL.
func BenchmarkCreatePostgres(b *testing.B) { benchCreate(b, "postgres") }

func benchCreate(b *testing.B, dialect string) {
	svc, _, agent, _ := benchSetup(b, dialect)
	req := handoff.CreateRequest{Action: "deploy", Title: "Deploy api"}
	b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Create(context.Background(), agent, req, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

func benchWake(b *testing.B, dialect string, creators int) {
	ctx := context.Background()
	svc, w, agent, member := benchSetup(b, dialect)
	req := handoff.CreateRequest{Action: "deploy", Title: "Deploy api"}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	for range creators {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := svc.Create(ctx, agent, req, ""); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); bg.Wait() }()

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c, err := svc.Create(ctx, agent, req, "")
		if err != nil {
			b.Fatal(err)
		}
		w.watch.Store(&c.Handoff.ID)
		for len(w.read) > 0 { // drop a signal left by the last round's decision
			<-w.read
		}
		done := make(chan time.Time, 1)
		go func() {
			h, err := svc.Wait(ctx, agent, c.Handoff.ID, 30*time.Second, nil)
			at := time.Now()
			if err != nil || h.Status != store.StatusApproved {
				b.Errorf("wait: %v %v", h.Status, err)
			}
			done <- at
		}()
		<-w.read // the waiter found it pending and is now blocked on its subscription
		b.StartTimer()
		start := time.Now()
		if _, err := svc.Decide(ctx, member, c.Handoff.ID, "approve", "", "api"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-done).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}

// benchSetup is a service on a fresh database whose org has 40 k pending handoffs.
func benchSetup(b *testing.B, dialect string) (*handoff.Service, waitRead, handoff.Actor, handoff.Actor) {
	ctx := context.Background()
	s := testdb.Open(b, dialect)
	kr, err := keyring.LoadOrCreate(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(b.TempDir(), "ony-bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	log := audit.New(keys, "ony-bench", func(r string) bool { return risk.KnownReason(risk.Reason(r)) }, nil)
	w := waitRead{Store: s, read: make(chan struct{}, 1), watch: new(atomic.Pointer[string])}
	svc := handoff.NewService(handoff.Deps{Store: w, Audit: log, Risk: risk.Default(), Keyring: kr, Coord: coord.NewMemory(nil),
		Logger: testdb.Discard}, handoff.Config{DefaultTimeout: time.Hour, WaitRecheck: 2 * time.Second})

	now := time.Now().UTC()
	org := store.Org{ID: uuid.NewString(), Name: "big", MaxTimeout: 24 * time.Hour, CreatedAt: now}
	user := store.User{OrgID: org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Ana",
		PasswordHash: "x", Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: now}
	dev := store.Device{OrgID: org.ID, ID: uuid.NewString(), Name: "agent", TokenHash: []byte(uuid.NewString()), CallbackKey: []byte("k"), CreatedAt: now}
	if err := s.InOrg(ctx, org.ID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, org); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, user); err != nil {
			return err
		}
		return tx.CreateDevice(ctx, dev)
	}); err != nil {
		b.Fatal(err)
	}
	agent := handoff.Actor{OrgID: org.ID, Kind: store.ActorDevice, ID: dev.ID}
	member := handoff.Actor{OrgID: org.ID, Kind: store.ActorUser, ID: user.ID, Name: "Ana", Role: store.RoleMember}
	tmpl, err := svc.Create(ctx, agent, handoff.CreateRequest{Action: "deploy", Title: "Deploy api"}, "")
	if err != nil {
		b.Fatal(err)
	}
	testdb.Copy(b, s, org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{org.ID, tmpl.Handoff.ID}, 40000,
		map[string]string{"id": testdb.Suffix(dialect, "id", false)})

	return svc, w, agent, member
}

// BenchmarkCreateSerialPostgres is one agent creating on PostgreSQL, one create at a time: the
// create's latency, which its round trips set.
func BenchmarkCreateSerialPostgres(b *testing.B) {
	svc, _, agent, _ := benchSetup(b, "postgres")
	req := handoff.CreateRequest{Action: "deploy", Title: "Deploy api"}
	b.ResetTimer()
	for range b.N {
		if _, err := svc.Create(context.Background(), agent, req, ""); err != nil {
			b.Fatal(err)
		}
	}
}
