package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address login throttling counts a request against. The TCP peer is the client
// unless it is a trusted proxy; then X-Forwarded-For is read from the right, where each trusted hop
// appended the address it saw, and the first address that is not a trusted proxy is the client.
// Entries further left were written by that client and prove nothing: believing them would let anyone
// pick a fresh rate-limit bucket per attempt.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				rest, entry = rest[:j], rest[j+1:]
			} else {
				rest, entry = "", rest
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := parseAddr(entry)
			if !ok {
				// A trusted hop wrote something that is not an address ("unknown"): the nearest
				// address we can vouch for is that hop's.
				return client.String()
			}
			if !isTrusted(a, trusted) {
				return a.String()
			}
			client = a
		}
	}
	// Every hop is a trusted proxy: the request started inside, at the furthest one.
	return client.String()
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port", IPv4-mapped IPv6 as IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
