package coord

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testredis"
)

// freezer is a TCP proxy to Redis that can stop passing bytes while keeping every connection open:
// a Redis that hangs (a partition, packets dropped) rather than one that refuses connections.
type freezer struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{l: l, target: target}
	f.cond = sync.NewCond(&f.mu)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) accept() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		go f.pipe(up, c)
		go f.pipe(c, up)
	}
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	_, _ = io.Copy(gatedWriter{f, dst}, src)
}

type gatedWriter struct {
	f *freezer
	w io.Writer
}

func (g gatedWriter) Write(p []byte) (int, error) {
	g.f.mu.Lock()
	for g.f.frozen {
		g.f.cond.Wait()
	}
	g.f.mu.Unlock()
	return g.w.Write(p)
}

func (f *freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.set(false)
	f.l.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// TestRedisHangs: when Redis stops answering without refusing, the first command that notices gives up
// after opTimeout and falls back; later ones and Ping do not wait on Redis at all; and when Redis answers
// again the replica shares its limits again by itself.
func TestRedisHangs(t *testing.T) {
	t.Parallel()
	rawURL, prefix := testredis.URL(t), testredis.Prefix(t)
	target := strings.TrimPrefix(strings.TrimSuffix(rawURL, "/0"), "redis://")
	f := newFreezer(t, target)
	r := newTestRedis(t, "redis://"+f.l.Addr().String()+"/0", prefix)
	hit(t, r, "k", 1, time.Minute)

	f.set(true)
	start := time.Now()
	l := hit(t, r, "k", 1, time.Minute) // Redis holds count 1, but this replica cannot know it
	if took := time.Since(start); took > opTimeout+3*time.Second {
		t.Fatalf("the first command after the hang took %v, want about opTimeout (%v)", took, opTimeout)
	}
	if !l.Allowed || l.Count != 1 {
		t.Fatalf("hit during the hang = %+v, want a fresh local window", l)
	}
	start = time.Now()
	l = hit(t, r, "k", 1, time.Minute)
	err := r.Ping(t.Context())
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a hit and a Ping after falling back took %v: they still wait on Redis", took)
	}
	if l.Allowed || l.Count != 2 || err == nil {
		t.Fatalf("after falling back: hit = %+v, Ping = %v; want the local window full and Ping failing", l, err)
	}

	f.set(false)
	deadline := time.Now().Add(15 * time.Second)
	for r.Ping(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ping still failing 15s after Redis answered again: %v", r.Ping(t.Context()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Shared again with a replica that never lost Redis. (Not "k": the command in flight when the
	// proxy froze may or may not have reached Redis.)
	other := newTestRedis(t, rawURL, prefix)
	hit(t, other, "k2", 1, time.Minute)
	if l := hit(t, r, "k2", 1, time.Minute); l.Allowed || l.Count != 2 {
		t.Fatalf("hit after recovery = %+v, want the window shared with the other replica (count 2)", l)
	}
}
