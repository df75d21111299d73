package coord

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ony-ai/ony/internal/testredis"
)

func newTestRedis(t testing.TB, rawURL, prefix string) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := NewRedis(ctx, rawURL, prefix, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedis(t *testing.T) {
	t.Parallel()
	runSuite(t, func(t *testing.T) Coord {
		return newTestRedis(t, testredis.URL(t), testredis.Prefix(t))
	})
}

// Two Coords on one prefix are two replicas: a decision recorded on one must wake a waiter on the other.
func TestRedisReplicas(t *testing.T) {
	t.Parallel()
	rawURL, prefix := testredis.URL(t), testredis.Prefix(t)
	a := newTestRedis(t, rawURL, prefix)
	b := newTestRedis(t, rawURL, prefix)

	for i := range 200 {
		topic := fmt.Sprintf("h%d", i)
		onB, cancelB := subscribe(t, b, topic)
		onA, cancelA := subscribe(t, a, topic)
		publish(t, a, topic)
		waitEvent(t, onB, "subscriber on the other replica")
		waitEvent(t, onA, "subscriber on the publishing replica")
		cancelA()
		cancelB()
	}

	// Rate limits are shared too.
	hit(t, a, "login", 1, time.Minute)
	if l := hit(t, b, "login", 1, time.Minute); l.Allowed || l.Count != 2 {
		t.Fatalf("hit on replica b = %+v, want the window shared with a", l)
	}
}

func TestRedisPrefixesIsolate(t *testing.T) {
	t.Parallel()
	rawURL := testredis.URL(t)
	a := newTestRedis(t, rawURL, testredis.Prefix(t))
	b := newTestRedis(t, rawURL, testredis.Prefix(t))
	onB, _ := subscribe(t, b, "h1")
	publish(t, a, "h1")
	// b's barrier travels through Redis after a's publish, so if a's publish were going to reach b it
	// would have by now.
	barrier(t, b)
	assertNoEvent(t, onB, "subscriber under another prefix")
	hit(t, a, "k", 1, time.Minute)
	if l := hit(t, b, "k", 1, time.Minute); l.Count != 1 {
		t.Fatalf("count under another prefix = %d, want 1", l.Count)
	}
}

func TestRedisGlobPrefix(t *testing.T) {
	t.Parallel()
	rawURL := testredis.URL(t)
	base := testredis.Prefix(t)
	wild := newTestRedis(t, rawURL, base+"*")
	other := newTestRedis(t, rawURL, base+"x")
	ev, _ := subscribe(t, wild, "h1")
	publish(t, other, "h1")
	barrier(t, wild)
	assertNoEvent(t, ev, "subscriber whose prefix contains a glob character")
	publish(t, wild, "h1")
	waitEvent(t, ev, "subscriber under a glob prefix")
}

// Killing the shared subscription's connection must not end notifications: the loop reconnects, wakes
// everyone (publishes in the gap are lost) and keeps delivering.
func TestRedisSurvivesReconnect(t *testing.T) {
	t.Parallel()
	rawURL, prefix := testredis.URL(t), testredis.Prefix(t)
	name := strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", "-")
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("client_name", name)
	u.RawQuery = q.Encode()
	c := newTestRedis(t, u.String(), prefix)
	other := newTestRedis(t, rawURL, prefix)
	ev, _ := subscribe(t, c, "h1")

	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opt)
	defer admin.Close()
	killed := killPubSub(t, admin, name)
	if killed == 0 {
		t.Fatalf("no pub/sub connection named %q found to kill", name)
	}

	waitEvent(t, ev, "wake-up after re-subscription")
	deadline := time.Now().Add(waitTimeout)
	for c.Ping(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ping still failing after reconnect: %v", c.Ping(t.Context()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	publish(t, other, "h1")
	waitEvent(t, ev, "publish after reconnect")
}

func killPubSub(t *testing.T, admin *redis.Client, name string) int {
	t.Helper()
	list, err := admin.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		fields := strings.Fields(line)
		var id string
		named := false
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if named && id != "" {
			if err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatalf("CLIENT KILL: %v", err)
			}
			killed++
		}
	}
	return killed
}

func TestNewRedisErrorsHidePassword(t *testing.T) {
	t.Parallel()
	_, err := NewRedis(t.Context(), "redis://user:s3cret@127.0.0.1:6379/0\x7f", "p:", nil)
	if err == nil {
		t.Fatal("NewRedis accepted an invalid URL")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if _, err := NewRedis(t.Context(), "http://127.0.0.1:6379", "p:", nil); err == nil {
		t.Fatal("NewRedis accepted a non-redis scheme")
	}
}

func TestNewRedisUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections; nothing listens there in a sane environment.
	if _, err := NewRedis(ctx, "redis://127.0.0.1:1/0", "p:", nil); err == nil {
		t.Fatal("NewRedis succeeded without a server")
	}
}

// BenchmarkRedisPublishReceive is the wake-up latency between replicas: publish on A, receive on B.
func BenchmarkRedisPublishReceive(b *testing.B) {
	rawURL, prefix := testredis.URL(b), testredis.Prefix(b)
	pub := newTestRedis(b, rawURL, prefix)
	sub := newTestRedis(b, rawURL, prefix)
	ctx := b.Context()
	ev, cancel, err := sub.Subscribe(ctx, "h1")
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	for b.Loop() {
		if err := pub.Publish(ctx, "h1"); err != nil {
			b.Fatal(err)
		}
		<-ev
	}
}

func BenchmarkRedisHit(b *testing.B) {
	r := newTestRedis(b, testredis.URL(b), testredis.Prefix(b))
	ctx := b.Context()
	for b.Loop() {
		if _, err := r.Hit(ctx, "k", 1<<62, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisHitParallel(b *testing.B) {
	r := newTestRedis(b, testredis.URL(b), testredis.Prefix(b))
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Hit(ctx, "k", 1<<62, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Not parallel: goroutine counts are only meaningful while other tests are paused.
func TestRedisCloseLeaksNoGoroutines(t *testing.T) {
	rawURL := testredis.URL(t)
	before := runtime.NumGoroutine()
	for range 5 {
		r, err := NewRedis(t.Context(), rawURL, testredis.Prefix(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		for i := range 100 {
			if _, _, err := r.Subscribe(ctx, fmt.Sprintf("h%d", i%7)); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Publish(t.Context(), "h1"); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisOutage stops a private Redis under two replicas and starts it again. Meanwhile each
// replica keeps its own rate-limit windows and wakes its own subscribers, Ping reports the loss, and
// nothing fails; once Redis is back the replicas share limits and notifications again by themselves,
// and a subscriber on the other replica hears of what was published only locally in the gap.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testredis.StartServer(t)
	prefix := testredis.Prefix(t)
	a := newTestRedis(t, srv.URL, prefix)
	b := newTestRedis(t, srv.URL, prefix)
	missed, _ := subscribe(t, b, "h1")
	onA, _ := subscribe(t, a, "h1")

	srv.Stop(t)
	if err := a.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeds with Redis stopped")
	}
	for i := range 3 {
		l := hit(t, a, "login", 2, time.Minute)
		if want := i < 2; l.Allowed != want || l.Count != int64(i+1) {
			t.Fatalf("hit %d during the outage = %+v, want count %d allowed %v", i+1, l, i+1, want)
		}
	}
	if l := peek(t, a, "login", 2, time.Minute); l.Allowed || l.RetryAfter <= 0 {
		t.Fatalf("peek during the outage = %+v, want refused with a Retry-After", l)
	}
	if l := hit(t, b, "login", 2, time.Minute); !l.Allowed || l.Count != 1 {
		t.Fatalf("hit on the other replica = %+v, want its own window", l)
	}
	publish(t, a, "h1") // only this replica can hear it now
	waitEvent(t, onA, "subscriber on the publishing replica during the outage")
	if err := a.Reset(t.Context(), "login"); err != nil {
		t.Fatalf("Reset during the outage: %v", err)
	}
	if l := peek(t, a, "login", 2, time.Minute); !l.Allowed || l.Count != 0 {
		t.Fatalf("peek after Reset = %+v", l)
	}

	srv.Start(t)
	waitEvent(t, missed, "subscriber on the other replica, once Redis is back")
	for _, c := range []*Redis{a, b} {
		deadline := time.Now().Add(15 * time.Second)
		for c.Ping(t.Context()) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("Ping still failing 15s after Redis came back: %v", c.Ping(t.Context()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every wake-up the recovery owed has been delivered once a publish made after it arrives.
	sync, _ := subscribe(t, b, "sync")
	publish(t, a, "sync")
	waitEvent(t, sync, "barrier from a to b")
	fresh, _ := subscribe(t, b, "h2")
	publish(t, a, "h2")
	waitEvent(t, fresh, "subscriber on the other replica after the restart")
	hit(t, a, "shared", 1, time.Minute)
	if l := hit(t, b, "shared", 1, time.Minute); l.Allowed || l.Count != 2 {
		t.Fatalf("hit on b after the restart = %+v, want the window shared with a", l)
	}
}
