// Package netguard keeps requests to URLs that agents or organization admins choose away from the
// network Ony runs in: loopback, link-local (cloud metadata), private and other non-public addresses.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// RefusedError is a connection the policy refused: the address that would have been dialled and the
// range it falls in. It never names a URL, which could carry the caller's secrets.
type RefusedError struct {
	Addr  netip.Addr
	Range string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("netguard: %s is not a public address (%s)", e.Addr, e.Range)
}

// Policy says which non-public addresses may be reached all the same. The zero value refuses them all.
type Policy struct {
	// AllowPrivate admits every non-public address: for a single machine whose agents listen on it.
	AllowPrivate bool
	// Allow admits the non-public addresses in these prefixes (an internal network the agents live on).
	Allow []netip.Prefix
}

// Check returns a *RefusedError when ip is not a public address and the policy does not admit it.
func (p Policy) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	name, ok := NonPublic(ip)
	if !ok || p.AllowPrivate || p.allowed(ip) {
		return nil
	}
	return &RefusedError{Addr: ip, Range: name}
}

// allowed also matches the IPv4 address a mapped or NAT64 address leads to, so an operator who
// allows 10.0.0.0/8 need not list ::ffff:10.0.0.0/104 too.
func (p Policy) allowed(ip netip.Addr) bool {
	v4, embeds := embeddedV4(ip)
	for _, pr := range p.Allow {
		if pr.Contains(ip) || (embeds && pr.Contains(v4)) {
			return true
		}
	}
	return false
}

// CheckHost refuses, before any request is made, a URL host (as url.URL.Hostname returns it) that
// already says where it leads: an IP literal, the legacy numeric IPv4 forms resolvers accept
// ("127.1", "2130706433"), or a localhost name. Other names are checked when dialled, since what they
// resolve to can change.
func (p Policy) CheckHost(host string) error {
	ip, ok := literal(host)
	if !ok {
		return nil
	}
	return p.Check(ip)
}

// literal returns the address a host names without asking DNS.
func literal(host string) (netip.Addr, bool) {
	// A fully qualified name ends in a dot; "127.0.0.1." is still 127.0.0.1 to some resolvers.
	host = strings.TrimSuffix(host, ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true
	}
	if name := strings.ToLower(host); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// RFC 6761: localhost names are the loopback, whatever a resolver says.
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return legacyIPv4(host)
}

// legacyIPv4 parses the inet_aton forms (one to four parts, each decimal, 0x-hex or 0-octal, the
// last filling the remaining bytes) that C resolvers turn into addresses although they are not IPs.
func legacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, s := range parts {
		v, ok := cNumber(s)
		if !ok {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// cNumber parses one part as C's strtoul with base 0 would, without overflowing.
func cNumber(s string) (uint64, bool) {
	base := uint64(10)
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" || len(s) > 11 {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(s) {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}

// Control is a net.Dialer control function that checks each address a connection is about to be
// made to — after resolution, once per address a name resolves to — so a name that resolves to an
// internal address, or changes its answer between a check and the connect (DNS rebinding), is
// refused all the same.
func (p Policy) Control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: cannot check address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a copy of d (nil: a plain dialer) that checks every connection with Control before
// its own control function, if it has one, runs.
func (p Policy) Dialer(d *net.Dialer) *net.Dialer {
	var nd net.Dialer
	if d != nil {
		nd = *d
	}
	ctl, ctlCtx := nd.Control, nd.ControlContext
	nd.Control = nil
	nd.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := p.Control(ctx, network, address, c); err != nil {
			return err
		}
		switch {
		case ctlCtx != nil:
			return ctlCtx(ctx, network, address, c)
		case ctl != nil:
			return ctl(network, address, c)
		}
		return nil
	}
	return &nd
}

// Transport is http.DefaultTransport dialling through p.Dialer(d) (d nil: a plain dialer; a zero
// timeout and keep-alive become DefaultTransport's 30 s), and with no proxy: through a proxy the guard
// would see only the proxy's address, and the proxy would reach the internal one.
func (p Policy) Transport(d *net.Dialer) *http.Transport {
	gd := p.Dialer(d)
	if gd.Timeout == 0 {
		gd.Timeout = 30 * time.Second
	}
	if gd.KeepAlive == 0 {
		gd.KeepAlive = 30 * time.Second
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = gd.DialContext
	return t
}

// Client is an HTTP client on Transport(d) that does not follow redirects: the first response is the
// answer, so a public URL cannot hand the request on to an internal one (the guard would refuse the
// dial anyway; not following keeps the outcome plain). timeout bounds each request.
func (p Policy) Client(d *net.Dialer, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: p.Transport(d),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ParsePrefix reads one address-range entry of configuration (an allow-list, trusted proxies): a
// CIDR ("10.0.0.0/8", "fd00::/8") or a single address, which stands for itself alone. The prefix is
// masked, so "10.1.2.3/8" means 10.0.0.0/8, and IPv4-mapped forms are read as the IPv4 they map
// (::ffff:10.0.0.0/104 is 10.0.0.0/8), since addresses are compared unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an IP address", s)
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	pr, err := netip.ParsePrefix(s)
	if err != nil || pr.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
	}
	if pr.Addr().Is4In6() && pr.Bits() >= 96 {
		pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96)
	}
	return pr.Masked(), nil
}
