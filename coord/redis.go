package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// subscribeTimeout bounds the wait for the initial PSUBSCRIBE confirmation when ctx has no deadline.
	subscribeTimeout = 5 * time.Second
	minBackoff       = 100 * time.Millisecond
	maxBackoff       = 5 * time.Second
	// opTimeout bounds one counter or publish command, so an unreachable Redis (packets dropped, no
	// refusal) costs a request this long once, before the replica falls back, not a dial timeout per
	// retry. Redis answers these in well under a millisecond.
	opTimeout = 2 * time.Second
	// probeEvery caps how long a replica keeps its own windows after Redis is back.
	probeEvery = time.Second
	// resyncTopic is published when a replica reaches Redis again: decisions it could only announce
	// locally meanwhile never reached the other replicas, so every replica wakes all its waiters. No
	// real topic is empty.
	resyncTopic = ""
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
//
// Losing Redis degrades coordination instead of failing the callers: while it is unreachable, rate
// limits count in this replica's own windows (so each limit holds per replica) and publishes wake this
// replica's subscribers only (others re-read on their own). A background probe notices Redis coming
// back, shares the limits again and wakes every subscriber on every replica. Ping reports the degraded
// state.
type Redis struct {
	client      *redis.Client
	ps          *redis.PubSub
	log         *slog.Logger
	keyPrefix   string
	topicPrefix string
	hit, peek   *redis.Script
	hub         hub
	local       *Memory // rate-limit windows while Redis is unreachable

	closed atomic.Bool
	subUp  atomic.Bool
	down   atomic.Bool   // Redis commands failed; counters and publishes stay local until a probe succeeds
	stop   chan struct{} // closed by Close to end the receive loop's back-off and the probe
	done   chan struct{} // closed when the receive loop has returned

	probeMu sync.Mutex     // orders starting a probe against Close waiting for it
	probes  sync.WaitGroup // the running probe, if any
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
	// Without this go-redis ignores context deadlines on the wire, and a Redis that stops answering
	// holds each command for its read timeout (5 s) instead of opTimeout.
	opt.ContextTimeoutEnabled = true
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
		local:       NewMemory(nil),
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
				if topic == resyncTopic {
					r.hub.wakeAll()
				} else {
					r.hub.publish(topic)
				}
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

// Publish wakes subscribers of topic on every replica sharing this Redis and prefix. This replica's
// own are woken first, in the process, rather than after the round trip through Redis (whose echo
// then wakes them once more, harmlessly: notifications may be spurious). Without Redis it wakes this
// replica's subscribers and succeeds: the others re-read on their own, and are all woken when Redis is
// back.
func (r *Redis) Publish(ctx context.Context, topic string) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: publish: %w", ErrClosed)
	}
	r.hub.publish(topic)
	if !r.down.Load() {
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		err := r.client.Publish(opCtx, r.topicPrefix+topic, "").Err()
		cancel()
		if err == nil {
			return nil
		}
		if err := r.fallBack(ctx, "publish", r.wrap("publish", err)); err != nil {
			return err
		}
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

// Hit implements Coord; without Redis it counts in this replica's own window.
func (r *Redis) Hit(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	if !r.down.Load() {
		count, ttl, err := r.run(ctx, "hit", r.hit, key, window.Milliseconds())
		if err == nil {
			return limitFor(count, 0, limit, ttl, window), nil
		}
		if err := r.fallBack(ctx, "hit", err); err != nil {
			return Limit{}, err
		}
	}
	return r.local.Hit(ctx, key, limit, window)
}

// Peek implements Coord; without Redis it reads this replica's own window.
func (r *Redis) Peek(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	if !r.down.Load() {
		count, ttl, err := r.run(ctx, "peek", r.peek, key)
		if err == nil {
			return limitFor(count, 1, limit, ttl, window), nil
		}
		if err := r.fallBack(ctx, "peek", err); err != nil {
			return Limit{}, err
		}
	}
	return r.local.Peek(ctx, key, limit, window)
}

// run executes a counter script and decodes its {count, pttl} reply. Errors never mention key: it may be
// an e-mail address or an IP.
func (r *Redis) run(ctx context.Context, op string, s *redis.Script, key string, args ...any) (int64, time.Duration, error) {
	if r.closed.Load() {
		return 0, 0, fmt.Errorf("coord: %s: %w", op, ErrClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	vals, err := s.Run(ctx, r.client, []string{r.keyPrefix + key}, args...).Int64Slice()
	if err != nil {
		return 0, 0, r.wrap(op, err)
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("coord: %s: unexpected script reply of %d values", op, len(vals))
	}
	return vals[0], time.Duration(vals[1]) * time.Millisecond, nil
}

// Reset implements Coord. The replica's own window is cleared too: it may hold counts from an outage.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: reset: %w", ErrClosed)
	}
	if err := r.local.Reset(ctx, key); err != nil {
		return fmt.Errorf("coord: reset: %w", err)
	}
	if r.down.Load() {
		return nil
	}
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := r.client.Del(opCtx, r.keyPrefix+key).Err(); err != nil {
		return r.fallBack(ctx, "reset", r.wrap("reset", err))
	}
	return nil
}

// Ping fails while Redis is unreachable or the shared subscription is down, since this replica then
// keeps its own rate limits and misses other replicas' notifications. Callers treat that as degraded.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return fmt.Errorf("coord: ping: %w", ErrClosed)
	}
	if r.down.Load() {
		// The probe is already asking Redis; a health check must not wait on an unreachable host.
		return errors.New("coord: ping: redis unreachable; rate limits are per replica until it is back")
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.wrap("ping", err)
	}
	if !r.subUp.Load() {
		return errors.New("coord: ping: redis subscription is down")
	}
	return nil
}

// fallBack decides what a failed command (err, already wrapped) means. Nil: Redis is unreachable, the
// caller carries on locally, and the replica stays local until a probe reaches Redis again. err: the
// caller's context ended or the Coord is closed, which no fallback can help.
func (r *Redis) fallBack(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return err
	}
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	if r.closed.Load() {
		return fmt.Errorf("coord: %s: %w", op, ErrClosed)
	}
	if !r.down.Swap(true) {
		r.log.Warn("coord: redis unreachable; rate limits count per replica and notifications stay on this replica until it is back",
			"op", op, "err", err)
		r.probes.Add(1)
		go r.probe()
	}
	return nil
}

// probe pings Redis until it answers, then shares rate limits again and wakes every replica's
// subscribers, since publishes made here while Redis was away reached only this replica.
func (r *Redis) probe() {
	defer r.probes.Done()
	wait := minBackoff
	for {
		select {
		case <-time.After(wait):
		case <-r.stop:
			return
		}
		wait = min(2*wait, probeEvery)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := r.client.Ping(ctx).Err()
		if err == nil {
			// Published before the replica counts as recovered, so a publish after Ping succeeds
			// reaches the others after the resync, never before.
			err = r.client.Publish(ctx, r.topicPrefix+resyncTopic, "").Err()
			cancel()
			if err != nil {
				r.log.Debug("coord: redis still unreachable", "err", err)
				continue
			}
			r.down.Store(false)
			r.log.Info("coord: redis reachable again; rate limits are shared again")
			return
		}
		cancel()
		r.log.Debug("coord: redis still unreachable", "err", err)
	}
}

// Close stops the receive loop, closes every subscriber's channel and the Redis connections.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.probeMu.Lock() // a probe being started now is counted before we wait for it
	close(r.stop)
	r.probeMu.Unlock()
	psErr := r.ps.Close()
	<-r.done
	r.probes.Wait()
	r.hub.close()
	_ = r.local.Close()
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
