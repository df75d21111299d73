package testdb

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP forwarder in front of the shared PostgreSQL server that a test can cut, to see
// what Ony does while its database is unreachable, without stopping the server other tests use.
// Cut closes every forwarded connection and stops listening (new connections are refused); Stall
// closes them and then accepts connections but never answers (a server that drops packets); Restore
// forwards again on the same port.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	stalled bool
	wg      sync.WaitGroup
}

// NewProxy forwards a fresh local port to the host and port of the PostgreSQL URL dbURL; it is
// closed when the test ends.
func NewProxy(t testing.TB, dbURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("testdb: proxy: %v", err)
	}
	p := &Proxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testdb: proxy: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is dbURL with its host and port replaced by the proxy's.
func (p *Proxy) URL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		p.t.Fatalf("testdb: proxy: %v", err)
	}
	u.Host = p.addr
	return u.String()
}

// Cut makes the database unreachable: open connections are closed, new ones refused.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Stall makes the database unreachable the slow way: open connections are closed, new ones are
// accepted and never answered.
func (p *Proxy) Stall() {
	p.t.Helper()
	p.Cut()
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
	p.listen()
}

// Restore makes the database reachable again, on the same address.
func (p *Proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	p.stalled = false
	for c := range p.conns { // stalled ones
		c.Close()
	}
	listening := p.ln != nil
	p.mu.Unlock()
	if !listening {
		p.listen()
	}
}

func (p *Proxy) listen() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("testdb: proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.forward(c)
		}
	}()
}

func (p *Proxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.stalled {
		p.conns[c] = struct{}{} // held open, unanswered, until Restore or Cut
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut while dialling
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	p.wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
}
