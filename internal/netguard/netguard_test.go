package netguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/netguard"
	"github.com/ony-ai/ony/internal/netguard/netguardtest"
)

// TestNonPublic: every refused range by name, in IPv4, IPv6 and the IPv6 forms that lead to IPv4;
// and public addresses, in the same forms, pass.
func TestNonPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want string // "" = public
	}{
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.255", "shared (CGNAT)"},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"169.254.169.254", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.170", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "6to4 relay"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},

		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"169.253.255.255", ""},
		{"223.255.255.255", ""},
		{"11.0.0.1", ""},

		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::7f00:1", "IPv4-compatible"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local"},
		{"fc00::1", "unique local (private)"},
		{"fd12:3456::1", "unique local (private)"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"100::1", "discard-only"},
		{"64:ff9b:1::a00:1", "NAT64 local-use"},
		{"2001::1", "Teredo"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "IETF protocol assignment"},
		{"2001:db8::1", "documentation"},
		{"2002:7f00:1::1", "6to4"},
		{"3fff::1", "documentation"},
		{"4000::1", "reserved"},
		{"1::1", "reserved"},

		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001::200e", ""},
		{"2001:4860:4860::8888", ""},

		// IPv4-mapped: judged by the IPv4 address.
		{"::ffff:127.0.0.1", "IPv4-mapped loopback"},
		{"::ffff:7f00:1", "IPv4-mapped loopback"},
		{"::ffff:169.254.169.254", "IPv4-mapped link-local"},
		{"::ffff:10.1.2.3", "IPv4-mapped private"},
		{"::ffff:0.0.0.0", "IPv4-mapped unspecified"},
		{"::ffff:100.64.0.1", "IPv4-mapped shared (CGNAT)"},
		{"::ffff:255.255.255.255", "IPv4-mapped broadcast"},
		{"::ffff:8.8.8.8", ""},
		// NAT64's well-known prefix: the same.
		{"64:ff9b::127.0.0.1", "NAT64 loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64 link-local"},
		{"64:ff9b::192.168.0.1", "NAT64 private"},
		{"64:ff9b::8.8.8.8", ""},
	}
	for _, tc := range tests {
		ip := netip.MustParseAddr(tc.ip)
		name, refused := netguard.NonPublic(ip)
		if refused != (tc.want != "") || name != tc.want {
			t.Errorf("NonPublic(%s) = %q, %v; want %q", tc.ip, name, refused, tc.want)
		}
		err := netguard.Policy{}.Check(ip)
		var re *netguard.RefusedError
		if tc.want == "" {
			if err != nil {
				t.Errorf("Check(%s) = %v, want nil", tc.ip, err)
			}
			continue
		}
		if !errors.As(err, &re) || re.Range != tc.want || re.Addr != ip.WithZone("") {
			t.Errorf("Check(%s) = %v, want a refusal naming %q", tc.ip, err, tc.want)
		}
		if err := (netguard.Policy{AllowPrivate: true}).Check(ip); err != nil {
			t.Errorf("allow_private: Check(%s) = %v", tc.ip, err)
		}
	}
	if _, refused := netguard.NonPublic(netip.Addr{}); !refused {
		t.Error("the zero Addr passes")
	}
}

// TestAllowList: listed prefixes admit their addresses, in every form that leads to them, and nothing else.
func TestAllowList(t *testing.T) {
	t.Parallel()
	p := netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/32"), netip.MustParsePrefix("127.0.0.1/32")}}
	for _, tc := range []struct {
		ip    string
		allow bool
	}{
		{"10.20.1.2", true},
		{"::ffff:10.20.1.2", true},
		{"64:ff9b::10.20.1.2", true},
		{"10.21.0.1", false},
		{"fd00:1::5", true},
		{"fd00:2::5", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	} {
		if err := p.Check(netip.MustParseAddr(tc.ip)); (err == nil) != tc.allow {
			t.Errorf("Check(%s) = %v, want allowed %v", tc.ip, err, tc.allow)
		}
	}
}

// TestCheckHost: hosts that say where they lead are judged before any request; names are left to the dial.
func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.1.", true},
		{"169.254.169.254", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"fe80::1%eth0", true},
		{"localhost", true},
		{"LocalHost.", true},
		{"api.localhost", true},
		{"127.1", true},
		{"2130706433", true},
		{"0x7f000001", true},
		{"0177.0.0.1", true},
		{"0x7f.1", true},
		{"0xa9.0xfe.0xa9.0xfe", true},
		{"0", true},

		{"8.8.8.8", false},
		{"2606:4700:4700::1111", false},
		{"agent.example", false},
		{"localhost.example", false},
		{"deadbeef.cafe", false},
		{"1.2.3", false},
		{"256.1.1.1", false},
		{"1.2.3.4.5", false},
		{"0x", false},
		{"08.1.1.1", false},
		{"", false},
	} {
		err := netguard.Policy{}.CheckHost(tc.host)
		if (err != nil) != tc.refused {
			t.Errorf("CheckHost(%q) = %v, want refused %v", tc.host, err, tc.refused)
		}
		if err := (netguard.Policy{AllowPrivate: true}).CheckHost(tc.host); err != nil {
			t.Errorf("allow_private: CheckHost(%q) = %v", tc.host, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{" 10.1.2.3/8 ", "10.0.0.0/8"},
		{"10.1.2.3", "10.1.2.3/32"},
		{"fd00::/8", "fd00::/8"},
		{"::1", "::1/128"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"10.0.0.0/33", ""},
		{"10.0.0", ""},
		{"fe80::1%eth0", ""},
		{"fe80::%eth0/64", ""},
		{"", ""},
		{"example.com", ""},
	} {
		got, err := netguard.ParsePrefix(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// listen returns a local listener and a function that accepts its next connection.
func listen(t *testing.T, network, addr string) (net.Listener, func() net.Conn) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, func() net.Conn {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// firstAcceptedIs proves no refused dial reached the listener: connections queue in the order they
// were made, so the one an allowed dial makes afterwards must be the first accepted.
func firstAcceptedIs(t *testing.T, accept func() net.Conn, addr string) {
	t.Helper()
	c, err := netguard.Policy{AllowPrivate: true}.Dialer(nil).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := accept(); got.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("the listener first accepted %s, not the allowed dial from %s: a refused dial connected", got.RemoteAddr(), c.LocalAddr())
	}
}

// TestDialRefused: a guarded dial to a local listener fails before connecting — by IP, by a name that
// resolves to the loopback, and for every address of that name — and the listener gets nothing.
func TestDialRefused(t *testing.T) {
	t.Parallel()
	l, accept := listen(t, "tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	ctx := context.Background()

	var ownControl atomic.Int32
	d := netguard.Policy{}.Dialer(&net.Dialer{Timeout: 5 * time.Second, Control: func(string, string, syscall.RawConn) error {
		ownControl.Add(1) // only reached for allowed addresses
		return nil
	}})
	for _, target := range []string{l.Addr().String(), net.JoinHostPort("localhost", strconv.Itoa(port)), net.JoinHostPort("::ffff:127.0.0.1", strconv.Itoa(port))} {
		c, err := d.DialContext(ctx, "tcp", target)
		var re *netguard.RefusedError
		if !errors.As(err, &re) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("dial %s: %v, want a refusal", target, err)
		}
		if re.Range != "loopback" && re.Range != "IPv4-mapped loopback" {
			t.Errorf("dial %s refused as %q", target, re.Range)
		}
		if strings.Contains(err.Error(), "localhost") && !strings.Contains(target, "localhost") {
			t.Errorf("error %q", err)
		}
	}
	if n := ownControl.Load(); n != 0 {
		t.Errorf("the dialer's own control ran %d times for refused addresses", n)
	}
	firstAcceptedIs(t, accept, l.Addr().String())
}

// TestDialEveryAddress: a name with several addresses has each one checked as it is dialled, not
// only the first, and a name that resolves to the loopback is refused like the loopback itself.
func TestDialEveryAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	many := []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00::1"}
	res := netguardtest.Resolver(map[string][]string{"many.test": many})
	if got, err := res.LookupNetIP(ctx, "ip", "many.test"); err != nil || len(got) != len(many) {
		t.Fatalf("the fake resolver answers %v, %v", got, err)
	}
	var mu sync.Mutex
	checked := map[netip.Addr]bool{}
	d := &net.Dialer{Timeout: 5 * time.Second, Resolver: res, ControlContext: func(ctx context.Context, network, address string, c syscall.RawConn) error {
		mu.Lock()
		checked[netip.MustParseAddrPort(address).Addr().Unmap()] = true
		mu.Unlock()
		return netguard.Policy{}.Control(ctx, network, address, c)
	}}
	c, err := d.DialContext(ctx, "tcp", "many.test:9")
	if err == nil {
		c.Close()
		t.Fatal("many.test was dialled")
	}
	var re *netguard.RefusedError
	if !errors.As(err, &re) {
		t.Errorf("error %v is not a refusal", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range many {
		if !checked[netip.MustParseAddr(a)] {
			t.Errorf("many.test's address %s was never checked (checked %v)", a, checked)
		}
	}
	t.Logf("many.test: %d addresses, %d checked and refused", len(many), len(checked))
}

// TestDialName: a name resolving to the loopback is refused before a connection reaches the listener;
// the allow-list admits it.
func TestDialName(t *testing.T) {
	t.Parallel()
	l, accept := listen(t, "tcp", "127.0.0.1:0")
	target := net.JoinHostPort("agent.test", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	res := netguardtest.Resolver(map[string][]string{"agent.test": {"127.0.0.1"}})
	ctx := context.Background()

	c, err := netguard.Policy{}.Dialer(&net.Dialer{Resolver: res}).DialContext(ctx, "tcp", target)
	var re *netguard.RefusedError
	if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want 127.0.0.1 refused", target, err)
	}
	firstAcceptedIs(t, accept, l.Addr().String())

	allow := netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	c, err = allow.Dialer(&net.Dialer{Resolver: res}).DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatalf("allowed dial %s: %v", target, err)
	}
	defer c.Close()
	if got := accept(); got.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("accepted %s, dialled from %s", got.RemoteAddr(), c.LocalAddr())
	}
}

// TestDialAllowed: the allow-list admits the loopback, and the connection arrives.
func TestDialAllowed(t *testing.T) {
	t.Parallel()
	l, accept := listen(t, "tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	for _, p := range []netguard.Policy{
		{AllowPrivate: true},
		{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		c, err := p.Dialer(nil).DialContext(context.Background(), "tcp4", net.JoinHostPort("localhost", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if got := accept(); got.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("accepted %s, dialled from %s", got.RemoteAddr(), c.LocalAddr())
		}
		c.Close()
	}
}

// TestClient: the guarded client refuses a loopback URL without a request reaching it, and when
// allowed does not follow a redirect.
func TestClient(t *testing.T) {
	t.Parallel()
	var hits, redirected atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			redirected.Add(1)
			return
		}
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)

	_, err := netguard.Policy{}.Client(nil, 5*time.Second).Post(srv.URL+"/hook?secret=s3cr3t", "application/json", strings.NewReader("{}"))
	var re *netguard.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("post to %s: %v, want a refusal", srv.URL, err)
	}
	if strings.Contains(re.Error(), "s3cr3t") || strings.Contains(re.Error(), "/hook") {
		t.Errorf("the refusal names the URL: %v", re)
	}

	resp, err := netguard.Policy{AllowPrivate: true}.Client(nil, 5*time.Second).Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the redirect itself (302)", resp.StatusCode)
	}
	if h, r := hits.Load(), redirected.Load(); h != 1 || r != 0 {
		t.Errorf("server saw %d requests and %d followed redirects, want 1 and 0", h, r)
	}
	if (netguard.Policy{}).Transport(nil).Proxy != nil {
		t.Error("the guarded transport uses a proxy, which would dial for it")
	}
}
