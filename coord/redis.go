package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// subscribeTimeout bounds the wait for the initial PSUBSCRIBE confirmation when ctx has no deadline.
	subscribeTimeout = 5 * time.Second
	minBackoff       = 100 * time.Millisecond
	maxBackoff       = 5 * time.Second
)

// hitScript is INCR plus "PEXPIRE NX" in one atomic step, so a window always gets its expiry and starts at the
// first hit. It is written as a TTL check rather than PEXPIRE ... NX so it also runs on Redis < 7, and so a key
// that somehow lost its TTL is repaired instead of blocking forever.
const hitScript = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`

const peekScript = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
return {n, redis.call('PTTL', KEYS[1])}
`

// Redis is a Coord shared by every replica that uses the same Redis and prefix.
//
// All notifications arrive over one pattern subscription per process and are fanned out locally, so
// the number of subscribers costs Redis nothing. The receive loop survives disconnects (go-redis redials
// and re-subscribes; TCP keep-alive detects dead peers) and wakes every local subscriber once the
// subscription is back, because publishes made in the gap were lost.
type Redis struct {
	client      *redis.Client
	ps          *redis.PubSub
	log         *slog.Logger
	keyPrefix   string
	topicPrefix string
	hit, peek   *redis.Script
	hub         hub

	closed atomic.Bool
	subUp  atomic.Bool
	stop   chan struct{} // closed by Close to end the receive loop's back-off
	done   chan struct{} // closed when the receive loop has returned
}

// NewRedis connects to the redis:// or rediss:// URL, checks it with PING, and subscribes to every topic
// under prefix, returning only once Redis has confirmed the subscription. logger may be nil.
func NewRedis(ctx context.Context, rawURL, prefix string, logger *slog.Logger) (*Redis, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("coord: parse redis url: %w", err)
	}
	client := redis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("coord: ping redis: %w", err)
	}
	r := &Redis{
		client:      client,
		log:         logger,
		keyPrefix:   prefix + "rl:",
		topicPrefix: prefix + "topic:",
		hit:         redis.NewScript(hitScript),
		peek:        redis.NewScript(peekScript),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	r.ps = client.PSubscribe(ctx, escapeGlob(r.topicPrefix)+"*")
	if err := r.awaitSubscription(ctx); err != nil {
		_ = r.ps.Close()
		_ = client.Close()
		return nil, fmt.Errorf("coord: subscribe: %w", err)
	}
	r.subUp.Store(true)
	go r.receive()
	return r, nil
}

func (r *Redis) awaitSubscription(ctx context.Context) error {
	for {
		msg, err := r.ps.ReceiveTimeout(ctx, subscribeTimeout)
		if err != nil {
			return err
		}
		if _, ok := msg.(*redis.Subscription); ok {
			return nil
		}
	}
}

// receive is the process's single reader of the subscription connection.
func (r *Redis) receive() {
	defer close(r.done)
	// No read timeout: a deadline firing mid-reply would desynchronise the connection. Close unblocks
	// the read by closing the PubSub.
	ctx := context.Background()
	backoff := minBackoff
	for {
		msg, err := r.ps.Receive(ctx)
		if r.closed.Load() {
			return
		}
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			if r.subUp.Swap(false) {
				r.log.Warn("coord: redis subscription lost, reconnecting", "err", err)
			} else {
				r.log.Debug("coord: redis subscription still down", "err", err)
			}
			select {
			case <-time.After(backoff):
			case <-r.stop:
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		switch m := msg.(type) {
		case *redis.Message:
			if topic, ok := strings.CutPrefix(m.Channel, r.topicPrefix); ok {
				r.hub.publish(topic)
			}
		case *redis.Subscription:
			// Only a re-subscription reaches this loop (the first was consumed by NewRedis): anything
			// published while we were away is gone, so let every waiter re-read.
			if m.Kind == "psubscribe" {
				if !r.subUp.Swap(true) {
					r.log.Info("coord: redis subscription re-established")
				}
				r.hub.wakeAll()
			}
		}
	}
}

// Publish wakes subscribers of topic on every replica sharing this Redis and prefix.
func (r *Redis) Publish(ctx context.Context, topic string) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: publish: %w", ErrClosed)
	}
	if err := r.client.Publish(ctx, r.topicPrefix+topic, "").Err(); err != nil {
		return r.wrap("publish", err)
	}
	return nil
}

// Subscribe implements Coord. It only registers locally: the process-wide subscription is already live.
func (r *Redis) Subscribe(ctx context.Context, topic string) (<-chan struct{}, func(), error) {
	if r.closed.Load() {
		return nil, nil, ErrClosed
	}
	return r.hub.subscribe(ctx, topic)
}

// Hit implements Coord.
func (r *Redis) Hit(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	count, ttl, err := r.run(ctx, "hit", r.hit, key, window.Milliseconds())
	if err != nil {
		return Limit{}, err
	}
	return limitFor(count, 0, limit, ttl, window), nil
}

// Peek implements Coord.
func (r *Redis) Peek(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	count, ttl, err := r.run(ctx, "peek", r.peek, key)
	if err != nil {
		return Limit{}, err
	}
	return limitFor(count, 1, limit, ttl, window), nil
}

// run executes a counter script and decodes its {count, pttl} reply. Errors never mention key: it may be
// an e-mail address or an IP.
func (r *Redis) run(ctx context.Context, op string, s *redis.Script, key string, args ...any) (int64, time.Duration, error) {
	if r.closed.Load() {
		return 0, 0, fmt.Errorf("coord: %s: %w", op, ErrClosed)
	}
	vals, err := s.Run(ctx, r.client, []string{r.keyPrefix + key}, args...).Int64Slice()
	if err != nil {
		return 0, 0, r.wrap(op, err)
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("coord: %s: unexpected script reply of %d values", op, len(vals))
	}
	return vals[0], time.Duration(vals[1]) * time.Millisecond, nil
}

// Reset implements Coord.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: reset: %w", ErrClosed)
	}
	if err := r.client.Del(ctx, r.keyPrefix+key).Err(); err != nil {
		return r.wrap("reset", err)
	}
	return nil
}

// Ping fails while the shared subscription is down, since this replica would then miss notifications.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: ping: %w", ErrClosed)
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.wrap("ping", err)
	}
	if !r.subUp.Load() {
		return errors.New("coord: ping: redis subscription is down")
	}
	return nil
}

// Close stops the receive loop, closes every subscriber's channel and the Redis connections.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.stop)
	psErr := r.ps.Close()
	<-r.done
	r.hub.close()
	if err := errors.Join(psErr, r.client.Close()); err != nil {
		return fmt.Errorf("coord: close: %w", err)
	}
	return nil
}

// wrap also marks errors caused by a concurrent Close as ErrClosed, so callers need one check.
func (r *Redis) wrap(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("coord: %s: %w: %w", op, ErrClosed, err)
	}
	return fmt.Errorf("coord: %s: %w", op, err)
}

// escapeGlob keeps a prefix containing glob metacharacters from widening the pattern subscription.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// RouteDriverLogs sends go-redis's own messages (dial failures, pool warnings) to logger at debug level
// instead of plain text on stderr. go-redis keeps its logger in a package variable, so this is
// process-wide; call it once at start.
func RouteDriverLogs(logger *slog.Logger) { redis.SetLogger(driverLog{logger}) }

type driverLog struct{ l *slog.Logger }

func (d driverLog) Printf(ctx context.Context, format string, v ...any) {
	d.l.DebugContext(ctx, "redis driver", "msg", fmt.Sprintf(format, v...))
}
