package media

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// µ-law 8 kHz: one byte a sample, so a 20 ms frame is 160 bytes.
const (
	FrameBytes    = 160
	FrameDuration = 20 * time.Millisecond
	bytesPerMS    = 8
	writeTimeout  = 5 * time.Second
	// lead is how much audio may wait at the provider, ahead of what it plays: enough to absorb
	// jitter (a frame that comes early goes at once), little enough that Clear silences at once.
	lead = 2 * FrameDuration
)

// ErrClosed is returned by Recv once the socket is closed or the provider stopped the stream.
var ErrClosed = errors.New("media: stream closed")

// item is one queued outbound thing: audio bytes or, when audio is nil, a mark.
type item struct {
	audio []byte
	mark  string
}

// sentMark is a mark on the wire: how many audio bytes went out between it and the previous one.
type sentMark struct {
	name  string
	bytes int64
}

// Stream is one live media websocket. Recv, Send, Mark, Clear, Played and Close are safe to call
// from different goroutines; Recv is meant for one reader.
type Stream struct {
	flavor   Flavor
	conn     *websocket.Conn
	streamID string
	callRef  string
	events   chan Event
	done     chan struct{} // closed by Close
	readDone chan struct{} // closed when the socket's reader ends
	kick     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	writeMu  sync.Mutex

	mu        sync.Mutex
	queue     []item
	queued    int   // audio bytes in queue
	segment   int64 // audio bytes sent since the last mark (or clear)
	pending   []sentMark
	played    int64
	waited    bool      // a short tail frame has waited one tick for more audio
	due       time.Time // when the provider will have played all audio sent (zero: nothing sent yet)
	frameHook func()
}

func newStream(f Flavor, conn *websocket.Conn, streamID, callRef string) *Stream {
	return &Stream{
		flavor: f, conn: conn, streamID: streamID, callRef: callRef,
		events:   make(chan Event, 16),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
}

// start runs the socket reader and the pacer; onStop is called when the provider ends the stream.
func (s *Stream) start(onEnd func()) {
	s.wg.Add(2)
	go s.read(onEnd)
	go s.pace()
}

// Flavor, StreamID and CallRef identify the stream (CallRef is the provider's call id).
func (s *Stream) Flavor() Flavor   { return s.flavor }
func (s *Stream) StreamID() string { return s.streamID }
func (s *Stream) CallRef() string  { return s.callRef }

func (s *Stream) read(onEnd func()) {
	defer s.wg.Done()
	defer close(s.readDone)
	defer onEnd()
	for {
		typ, msg, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		ev, err := Decode(s.flavor, msg)
		if err != nil {
			continue // tolerant: one bad message does not end a call
		}
		switch ev.Kind {
		case Connected, Start:
			continue
		case Mark:
			s.ack(ev.Name)
		}
		select {
		case s.events <- ev:
		case <-s.done:
			return
		}
		if ev.Kind == Stop {
			return
		}
	}
}

// Recv returns the next DTMF, Media, Mark or Stop event; ErrClosed after Close, or once the socket
// ended and the events received before that were delivered.
func (s *Stream) Recv(ctx context.Context) (Event, error) {
	if s.closed() {
		return Event{}, ErrClosed
	}
	select {
	case ev := <-s.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.readDone:
		select {
		case ev := <-s.events:
			return ev, nil
		default:
			return Event{}, ErrClosed
		}
	case <-s.done:
		return Event{}, ErrClosed
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Send queues µ-law 8 kHz audio; the pacer writes it in 160-byte frames, one per 20 ms once the
// provider holds 40 ms ahead (so a live 20 ms stream passes without delay). It copies ulaw.
func (s *Stream) Send(ulaw []byte) {
	if len(ulaw) == 0 || s.closed() {
		return
	}
	b := append([]byte(nil), ulaw...)
	s.mu.Lock()
	s.queue = append(s.queue, item{audio: b})
	s.queued += len(b)
	s.mu.Unlock()
	s.wake()
}

// Mark queues a mark after the audio sent so far; the provider echoes it (a Mark event) once that
// audio has played, which is what Played counts.
func (s *Stream) Mark(name string) {
	if s.closed() {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, item{mark: name})
	s.mu.Unlock()
	s.wake()
}

// Clear drops the queued audio and marks and tells the provider to drop what it buffered. Marks
// already on the wire no longer count towards Played, nor does audio sent after the last acknowledged
// mark: the callee may not have heard it.
func (s *Stream) Clear() {
	s.mu.Lock()
	s.queue, s.queued, s.segment, s.pending, s.waited = nil, 0, 0, nil, false
	s.due = time.Time{} // the provider's buffer is empty again
	s.mu.Unlock()
	_ = s.write(EncodeClear(s.flavor, s.streamID))
}

// Played is how much audio the provider acknowledged as played (through marks) since the stream began.
func (s *Stream) Played() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.played) * time.Millisecond / bytesPerMS
}

// Queued is how much audio waits in the pacer, not yet sent.
func (s *Stream) Queued() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.queued) * time.Millisecond / bytesPerMS
}

func (s *Stream) ack(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.pending {
		if m.name != name {
			continue
		}
		// Marks come back in order: the ones before this one have played too.
		for _, p := range s.pending[:i+1] {
			s.played += p.bytes
		}
		s.pending = s.pending[i+1:]
		return
	}
}

// Close stops the pacer and closes the websocket (normal closure), so the provider goes on with
// whatever follows the stream in the call document. It is idempotent.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.writeMu.Lock()
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		s.writeMu.Unlock()
		err = s.conn.Close()
	})
	return err
}

func (s *Stream) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Stream) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Stream) write(msg []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed() {
		return ErrClosed
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, msg)
}

// pace keeps at most lead of audio buffered at the provider, one 160-byte frame at a time: audio
// that comes faster than real time (the model's) goes out every 20 ms; audio that comes in real time
// (an echo, a live relay) goes out at once, with no waiting for a tick, so the pacer adds no latency
// beyond the jitter it absorbs. due models the provider's playout: when its buffer runs dry.
func (s *Stream) pace() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	sleep := func(d time.Duration, kick bool) bool {
		timer.Reset(d)
		var k <-chan struct{}
		if kick {
			k = s.kick
		}
		select {
		case <-timer.C:
		case <-k:
			timer.Stop()
		case <-s.done:
			timer.Stop()
			return false
		}
		return true
	}
	frame := make([]byte, 0, FrameBytes)
	var msgs [][]byte
	for {
		s.mu.Lock()
		now := time.Now()
		if ahead := s.due.Sub(now); ahead > lead {
			s.mu.Unlock()
			if !sleep(ahead-lead, true) { // a kick may follow a Clear: look again
				return
			}
			continue
		}
		var sent, wait bool
		frame, msgs, sent, wait = s.take(frame[:0], msgs[:0])
		if sent {
			if s.due.Before(now) {
				s.due = now // the provider's buffer ran dry: start a new run
			}
			s.due = s.due.Add(FrameDuration)
		}
		hook := s.frameHook
		s.mu.Unlock()
		for _, m := range msgs {
			if s.write(m) != nil {
				break
			}
		}
		if sent && hook != nil {
			hook()
		}
		switch {
		case sent:
		case wait:
			// A short tail: give more audio one frame's time to arrive before sending it short.
			if !sleep(FrameDuration, true) {
				return
			}
		default:
			select {
			case <-s.kick:
			case <-s.done:
				return
			}
		}
	}
}

// take builds this tick's messages under s.mu: marks at the head, one frame of up to 160 bytes, and
// the marks right after it. sent says a frame went; wait says a short tail was held back.
func (s *Stream) take(frame []byte, msgs [][]byte) (_ []byte, _ [][]byte, sent, wait bool) {
	s.marksLocked(&msgs)
	for len(s.queue) > 0 && len(frame) < FrameBytes && s.queue[0].audio != nil {
		it := &s.queue[0]
		n := copy(frame[len(frame):FrameBytes], it.audio)
		frame = frame[:len(frame)+n]
		if n == len(it.audio) {
			s.queue[0] = item{}
			s.queue = s.queue[1:]
		} else {
			it.audio = it.audio[n:]
		}
	}
	if len(frame) == 0 {
		return frame, msgs, false, false
	}
	if len(frame) < FrameBytes && len(s.queue) == 0 && !s.waited {
		// Put it back: more audio may be on its way; a short frame is sent only after one tick.
		s.queue = append(s.queue, item{audio: append([]byte(nil), frame...)})
		s.waited = true
		return frame[:0], msgs, false, true
	}
	s.waited = false
	s.queued -= len(frame)
	s.segment += int64(len(frame))
	msgs = append(msgs, EncodeMedia(s.flavor, s.streamID, frame))
	s.marksLocked(&msgs)
	if len(s.queue) == 0 {
		s.queue = nil // let a long utterance's backing array go
	}
	return frame, msgs, true, false
}

func (s *Stream) marksLocked(msgs *[][]byte) {
	for len(s.queue) > 0 && s.queue[0].audio == nil {
		name := s.queue[0].mark
		s.queue = s.queue[1:]
		s.pending = append(s.pending, sentMark{name: name, bytes: s.segment})
		s.segment = 0
		*msgs = append(*msgs, EncodeMark(s.flavor, s.streamID, name))
	}
}
