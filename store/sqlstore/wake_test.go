package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"
)

// blockingListener's WaitForNotification returns what is sent on next, or the context's error.
type blockingListener struct {
	riverdriver.Listener
	next      chan *riverdriver.Notification
	cancelled chan struct{}
}

func (l *blockingListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	select {
	case n := <-l.next:
		return n, nil
	case <-ctx.Done():
		l.cancelled <- struct{}{}
		return nil, ctx.Err()
	}
}

func newWakeListener() (*wakeListener, *blockingListener) {
	inner := &blockingListener{next: make(chan *riverdriver.Notification, 1), cancelled: make(chan struct{}, 1)}
	return &wakeListener{Listener: inner, w: newWaker()}, inner
}

func wait(t *testing.T, l *wakeListener, ctx context.Context) (*riverdriver.Notification, error) {
	t.Helper()
	type result struct {
		n   *riverdriver.Notification
		err error
	}
	got := make(chan result, 1)
	go func() {
		n, err := l.WaitForNotification(ctx)
		got <- result{n, err}
	}()
	select {
	case r := <-got:
		return r.n, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("WaitForNotification did not return")
		return nil, nil
	}
}

func TestWakeListenerPokeBeforeWait(t *testing.T) {
	l, _ := newWakeListener()
	l.w.poke()
	l.w.poke() // coalesces with the first
	n, err := wait(t, l, context.Background())
	if err != nil || n == nil || n.Topic != "river_insert" || n.Payload != `{"queue": "default"}` {
		t.Fatalf("got %+v, %v; want an insert notification for the default queue", n, err)
	}
	select {
	case <-l.w.c:
		t.Fatal("two pokes before a wait left a second wake")
	default:
	}
}

func TestWakeListenerPokeInterruptsInnerWait(t *testing.T) {
	l, inner := newWakeListener()
	go func() {
		time.Sleep(10 * time.Millisecond)
		l.w.poke()
	}()
	n, err := wait(t, l, context.Background())
	if err != nil || n == nil || n.Topic != "river_insert" {
		t.Fatalf("got %+v, %v; want the wake", n, err)
	}
	select {
	case <-inner.cancelled:
	default:
		t.Fatal("the inner wait was not interrupted before the wake was returned")
	}
}

func TestWakeListenerPassesInnerNotifications(t *testing.T) {
	l, inner := newWakeListener()
	want := &riverdriver.Notification{Topic: "river_control", Payload: "{}"}
	inner.next <- want
	n, err := wait(t, l, context.Background())
	if err != nil || n != want {
		t.Fatalf("got %+v, %v; want the inner listener's notification", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := wait(t, l, ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait returned %v", err)
	}
}
