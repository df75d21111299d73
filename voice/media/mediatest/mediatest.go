// Package mediatest is a fake provider media client for tests: it plays a call's side of a media
// websocket (connected, start, 20 ms µ-law frames, dtmf, stop) and "plays" what it receives.
package mediatest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ony-ai/ony/voice/media"
)

// EncodeULaw is G.711 µ-law of one 16-bit linear sample.
func EncodeULaw(sample int16) byte {
	const bias, clip = 0x84, 32635
	s := int(sample)
	sign := 0
	if s < 0 {
		s, sign = -s, 0x80
	}
	if s > clip {
		s = clip
	}
	s += bias
	exp := 7
	for mask := 0x4000; s&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (s >> (exp + 3)) & 0x0F
	return ^byte(sign | exp<<4 | mant)
}

// DecodeULaw is the inverse of EncodeULaw (to the quantisation step).
func DecodeULaw(u byte) int16 {
	u = ^u
	exp := int(u>>4) & 7
	s := ((int(u&0x0F) << 3) + 0x84) << exp
	s -= 0x84
	if u&0x80 != 0 {
		return int16(-s)
	}
	return int16(s)
}

// Tone is d of a sine at hz, half scale, µ-law 8 kHz.
func Tone(hz float64, d time.Duration) []byte {
	n := int(d / time.Millisecond * 8)
	out := make([]byte, n)
	for i := range out {
		out[i] = EncodeULaw(int16(16000 * math.Sin(2*math.Pi*hz*float64(i)/8000)))
	}
	return out
}

// Silence is d of µ-law silence (0xFF).
func Silence(d time.Duration) []byte {
	out := make([]byte, int(d/time.Millisecond*8))
	for i := range out {
		out[i] = 0xFF
	}
	return out
}

// Client is one fake call's media socket.
type Client struct {
	t        testing.TB
	flavor   media.Flavor
	conn     *websocket.Conn
	streamID string
	callRef  string

	writeMu sync.Mutex
	mu      sync.Mutex
	cond    *sync.Cond
	seq     int64
	chunk   int64
	play    []byte // audio queued to send; silence when empty
	loop    []byte // sent over and over when play is empty (nil: silence)
	recv    []byte
	frames  int
	sizes   []int
	arrived []time.Time
	rtt     func(time.Duration)
	discard bool
	ref     string // announced call id; random when empty
	sentAt  []time.Time
	kick    chan struct{}
	marks   []string // echoed back
	clears  int
	closed  bool
	code    int
	until   time.Time // when what was received will have played
	marksQ  []pendingMark
	stopped chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

type pendingMark struct {
	name string
	at   time.Time
}

// Option changes a Client before it starts.
type Option func(*Client)

// RoundTrip is for calls whose Run echoes the audio back: f gets, for each audio message Ony sends,
// the time since the client sent the frame it echoes (the n-th out pairs with the n-th in).
func RoundTrip(f func(time.Duration)) Option { return func(c *Client) { c.rtt = f } }

// Discard makes the client count audio from Ony but keep none of it (for long or many calls);
// Received, Sizes and Arrivals stay empty.
func Discard() Option { return func(c *Client) { c.discard = true } }

// CallRef makes the client announce ref as its call's id (the provider's call SID), instead of a
// random one: for tests in which Ony finds the call's send by it.
func CallRef(ref string) Option { return func(c *Client) { c.ref = ref } }

// Loop makes the client speak audio over and over instead of silence when it has nothing queued.
func Loop(ulaw []byte) Option { return func(c *Client) { c.loop = ulaw } }

// Dial connects to a media Handler at url (http:// or ws://), sends connected and start with params
// (where the flavor carries them) and starts sending a 20 ms frame every 20 ms. It fails t if the
// websocket cannot be opened; a refusal shows as Closed.
func Dial(t testing.TB, rawURL string, f media.Flavor, params map[string]string, opts ...Option) *Client {
	t.Helper()
	u := strings.Replace(rawURL, "http://", "ws://", 1)
	u = strings.Replace(u, "https://", "wss://", 1)
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{})
	if err != nil {
		t.Fatalf("mediatest: dial: %v", err)
	}
	resp.Body.Close()
	c := &Client{t: t, flavor: f, conn: conn, stopped: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	c.cond = sync.NewCond(&c.mu)
	for _, o := range opts {
		o(c)
	}
	c.streamID, c.callRef = ids(f)
	if c.ref != "" {
		c.callRef = c.ref
	}
	if f != media.Plivo {
		c.send(c.connected())
	}
	c.send(c.start(params))
	c.wg.Add(3)
	go c.reader()
	go c.speaker()
	go c.marker()
	t.Cleanup(c.Close)
	return c
}

func ids(f media.Flavor) (stream, call string) {
	h := func(n int) string { b := make([]byte, n); _, _ = rand.Read(b); return hex.EncodeToString(b) }
	uuid := func() string {
		s := h(16)
		return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	switch f {
	case media.Twilio:
		return "MZ" + h(16), "CA" + h(16)
	case media.Telnyx:
		return uuid(), "v3:" + h(12)
	}
	return uuid(), uuid()
}

// StreamID and CallRef are the ids this fake call announced.
func (c *Client) StreamID() string { return c.streamID }
func (c *Client) CallRef() string  { return c.callRef }

type obj = map[string]any

func (c *Client) connected() obj {
	v := "1.0.0"
	if c.flavor == media.SignalWire {
		v = "0.2.0"
	}
	return obj{"event": "connected", "protocol": "Call", "version": v}
}

func (c *Client) nextSeq() any {
	c.seq++
	if c.flavor == media.Plivo {
		return c.seq
	}
	return itoa(c.seq)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func (c *Client) start(params map[string]string) obj {
	c.mu.Lock()
	seq := c.nextSeq()
	c.mu.Unlock()
	switch c.flavor {
	case media.Telnyx:
		q := url.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		return obj{"event": "start", "sequence_number": seq, "stream_id": c.streamID, "start": obj{
			"user_id": "u1", "call_control_id": c.callRef, "call_session_id": "s1",
			"client_state": base64.StdEncoding.EncodeToString([]byte(q.Encode())),
			"media_format": obj{"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
		}}
	case media.Plivo:
		h, _ := json.Marshal(params)
		return obj{"event": "start", "sequenceNumber": seq, "start": obj{
			"callId": c.callRef, "streamId": c.streamID, "accountId": "MA1", "tracks": []string{"inbound"},
			"mediaFormat": obj{"encoding": "audio/x-mulaw", "sampleRate": 8000},
		}, "extra_headers": string(h)}
	}
	return obj{"event": "start", "sequenceNumber": seq, "streamSid": c.streamID, "start": obj{
		"accountSid": "AC1", "streamSid": c.streamID, "callSid": c.callRef, "tracks": []string{"inbound"},
		"customParameters": params,
		"mediaFormat":      obj{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
	}}
}

func (c *Client) mediaMsg(frame []byte) obj {
	c.chunk++
	seq := c.nextSeq()
	p := base64.StdEncoding.EncodeToString(frame)
	ts := (c.chunk - 1) * 20
	switch c.flavor {
	case media.Telnyx:
		return obj{"event": "media", "sequence_number": seq, "stream_id": c.streamID,
			"media": obj{"track": "inbound", "chunk": itoa(c.chunk), "timestamp": itoa(ts), "payload": p}}
	case media.Plivo:
		return obj{"event": "media", "sequenceNumber": seq, "streamId": c.streamID,
			"media": obj{"track": "inbound", "chunk": c.chunk, "timestamp": itoa(ts), "payload": p}}
	case media.SignalWire: // no streamSid on media
		return obj{"event": "media", "sequenceNumber": seq,
			"media": obj{"track": "inbound", "chunk": itoa(c.chunk), "timestamp": itoa(ts), "payload": p}}
	}
	return obj{"event": "media", "sequenceNumber": seq, "streamSid": c.streamID,
		"media": obj{"track": "inbound", "chunk": itoa(c.chunk), "timestamp": itoa(ts), "payload": p}}
}

func (c *Client) send(m obj) bool {
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Errorf("mediatest: %v", err)
		return false
	}
	return c.sendRaw(b)
}

// SendRaw writes one text message as is (for malformed-input tests).
func (c *Client) SendRaw(msg []byte) bool { return c.sendRaw(msg) }

func (c *Client) sendRaw(b []byte) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, b) == nil
}

// Play queues audio to speak (in 20 ms frames) ahead of the loop or silence.
func (c *Client) Play(ulaw []byte) {
	c.mu.Lock()
	c.play = append(c.play, ulaw...)
	c.mu.Unlock()
}

// DTMF sends one key press in the flavor's shape.
func (c *Client) DTMF(d string) {
	c.mu.Lock()
	seq := c.nextSeq()
	c.mu.Unlock()
	var m obj
	switch c.flavor {
	case media.SignalWire:
		m = obj{"event": "dtmf", "sequenceNumber": seq, "dtmf": obj{"digit": d, "duration": 250}}
	case media.Telnyx:
		m = obj{"event": "dtmf", "sequence_number": seq, "stream_id": c.streamID, "dtmf": obj{"digit": d}}
	case media.Plivo:
		m = obj{"event": "dtmf", "sequenceNumber": seq, "streamId": c.streamID, "dtmf": obj{"track": "inbound", "digit": d}}
	default:
		m = obj{"event": "dtmf", "sequenceNumber": seq, "streamSid": c.streamID, "dtmf": obj{"track": "inbound_track", "digit": d}}
	}
	c.send(m)
}

// Stop ends the stream the way the provider does (Plivo: by closing the socket) and stops speaking.
func (c *Client) Stop() {
	c.mu.Lock()
	seq := c.nextSeq()
	c.mu.Unlock()
	c.halt()
	switch c.flavor {
	case media.SignalWire:
		c.send(obj{"event": "stop"})
	case media.Telnyx:
		c.send(obj{"event": "stop", "sequence_number": seq, "stream_id": c.streamID, "stop": obj{"call_control_id": c.callRef}})
	case media.Plivo:
		c.Close()
	default:
		c.send(obj{"event": "stop", "sequenceNumber": seq, "streamSid": c.streamID, "stop": obj{"accountSid": "AC1", "callSid": c.callRef}})
	}
}

func (c *Client) halt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.stopped:
	default:
		close(c.stopped)
	}
}

// Close closes the socket (abruptly, as a hung-up call would) and waits for the client's goroutines.
func (c *Client) Close() {
	c.halt()
	c.mu.Lock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.mu.Unlock()
	c.conn.Close()
	c.wg.Wait()
}

func (c *Client) speaker() {
	defer c.wg.Done()
	tick := time.NewTicker(media.FrameDuration)
	defer tick.Stop()
	silence := Silence(media.FrameDuration)
	var off int
	for {
		select {
		case <-tick.C:
		case <-c.stopped:
			return
		}
		c.mu.Lock()
		var frame []byte
		switch {
		case len(c.play) > 0:
			n := min(len(c.play), media.FrameBytes)
			frame, c.play = c.play[:n], c.play[n:]
		case len(c.loop) > 0:
			frame = make([]byte, media.FrameBytes)
			for i := range frame {
				frame[i] = c.loop[(off+i)%len(c.loop)]
			}
			off = (off + media.FrameBytes) % len(c.loop)
		default:
			frame = silence
		}
		m := c.mediaMsg(frame)
		c.mu.Unlock()
		b, _ := json.Marshal(m)
		if c.rtt != nil {
			c.mu.Lock()
			c.sentAt = append(c.sentAt, time.Now())
			c.mu.Unlock()
		}
		if !c.sendRaw(b) {
			return
		}
	}
}

type inMsg struct {
	Event string `json:"event"`
	Media *struct {
		Payload     string `json:"payload"`
		ContentType string `json:"contentType"`
		SampleRate  int    `json:"sampleRate"`
	} `json:"media"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
	Name string `json:"name"`
}

func (c *Client) reader() {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
	}()
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if ok := asClose(err, &ce); ok {
				c.mu.Lock()
				c.code = ce.Code
				c.mu.Unlock()
			}
			return
		}
		var m inMsg
		if err := json.Unmarshal(msg, &m); err != nil {
			c.t.Errorf("mediatest: Ony sent a malformed message")
			continue
		}
		c.handle(m)
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

func (c *Client) handle(m inMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.cond.Broadcast()
	now := time.Now()
	want := [3]string{"media", "mark", "clear"}
	if c.flavor == media.Plivo {
		want = [3]string{"playAudio", "checkpoint", "clearAudio"}
	}
	switch m.Event {
	case want[0]:
		if m.Media == nil {
			c.t.Errorf("mediatest: audio message without media")
			return
		}
		if c.flavor == media.Plivo && (m.Media.ContentType != "audio/x-mulaw" || m.Media.SampleRate != 8000) {
			c.t.Errorf("mediatest: playAudio with contentType %q sampleRate %d", m.Media.ContentType, m.Media.SampleRate)
		}
		b, err := base64.StdEncoding.DecodeString(m.Media.Payload)
		if err != nil {
			c.t.Errorf("mediatest: bad base64 payload")
			return
		}
		c.frames++
		if !c.discard {
			c.recv = append(c.recv, b...)
			c.sizes = append(c.sizes, len(b))
			c.arrived = append(c.arrived, now)
		}
		if c.rtt != nil && len(c.sentAt) > 0 {
			c.rtt(now.Sub(c.sentAt[0]))
			c.sentAt = c.sentAt[1:]
		}
		if c.until.Before(now) {
			c.until = now
		}
		c.until = c.until.Add(time.Duration(len(b)) * time.Millisecond / 8)
	case want[1]:
		name := m.Name
		if m.Mark != nil {
			name = m.Mark.Name
		}
		at := c.until
		if at.Before(now) {
			at = now
		}
		c.marksQ = append(c.marksQ, pendingMark{name, at})
		c.wakeMarker()
	case want[2]:
		// The buffer is dropped; pending marks come back at once (what Twilio does).
		c.clears++
		c.until = now
		for i := range c.marksQ {
			c.marksQ[i].at = now
		}
		c.wakeMarker()
	default:
		c.t.Errorf("mediatest: unexpected event %q for %s", m.Event, c.flavor)
	}
}

func (c *Client) wakeMarker() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// marker echoes marks when the audio before them has played.
func (c *Client) marker() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		c.mu.Lock()
		var due []string
		for len(c.marksQ) > 0 && !c.marksQ[0].at.After(now) {
			due = append(due, c.marksQ[0].name)
			c.marksQ = c.marksQ[1:]
		}
		wait := time.Hour
		if len(c.marksQ) > 0 {
			wait = c.marksQ[0].at.Sub(now)
		}
		seq := c.seq
		c.mu.Unlock()
		for _, name := range due {
			var m obj
			switch c.flavor {
			case media.Plivo:
				m = obj{"event": "playedStream", "sequenceNumber": seq, "streamId": c.streamID, "name": name}
			case media.Telnyx:
				m = obj{"event": "mark", "sequence_number": itoa(seq), "stream_id": c.streamID, "mark": obj{"name": name}}
			default:
				m = obj{"event": "mark", "sequenceNumber": itoa(seq), "streamSid": c.streamID, "mark": obj{"name": name}}
			}
			if !c.send(m) {
				return
			}
			c.mu.Lock()
			c.marks = append(c.marks, name)
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		if len(due) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-c.kick:
			timer.Stop() // Go ≥ 1.23: no stale tick to drain
		case <-c.done:
			return
		}
	}
}

// Arrivals are when each audio message from Ony arrived.
func (c *Client) Arrivals() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.arrived...)
}

// Sizes are the sizes of the audio messages Ony sent, in order.
func (c *Client) Sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sizes...)
}

// Received is all audio Ony sent, in order.
func (c *Client) Received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.recv...)
}

// Frames is how many audio messages Ony sent.
func (c *Client) Frames() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// Marks are the marks echoed back so far, in order.
func (c *Client) Marks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.marks...)
}

// Clears is how many clear messages Ony sent.
func (c *Client) Clears() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clears
}

// wait blocks until cond holds (under c.mu) or d passes.
func (c *Client) wait(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		c.cond.Wait()
	}
	return true
}

// WaitClear waits up to d for Ony to send a clear.
func (c *Client) WaitClear(d time.Duration) bool {
	return c.wait(d, func() bool { return c.clears > 0 })
}

// WaitReceived waits up to d for n bytes of audio from Ony.
func (c *Client) WaitReceived(n int, d time.Duration) bool {
	return c.wait(d, func() bool { return len(c.recv) >= n })
}

// WaitMarks waits up to d for n marks to have been echoed.
func (c *Client) WaitMarks(n int, d time.Duration) bool {
	return c.wait(d, func() bool { return len(c.marks) >= n })
}

// WaitClosed waits up to d for Ony to close the socket and returns the close code (0: no close frame).
func (c *Client) WaitClosed(d time.Duration) (code int, closed bool) {
	ok := c.wait(d, func() bool { return c.closed })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, ok
}
