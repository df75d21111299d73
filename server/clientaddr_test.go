package server

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		peer    string
		xff     []string // one X-Forwarded-For header per element
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured: the peer", "203.0.113.5:4000", []string{"198.51.100.1"}, nil, "203.0.113.5"},
		{"untrusted peer: XFF ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, lb, "203.0.113.5"},
		{"trusted peer, no XFF: the peer", "10.0.0.2:4000", nil, lb, "10.0.0.2"},
		{"trusted peer: the client it saw", "10.0.0.2:4000", []string{"198.51.100.1"}, lb, "198.51.100.1"},
		{"forged left-most entry ignored", "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.1"}, lb, "198.51.100.1"},
		{"forged trusted-looking entry ignored", "10.0.0.2:4000", []string{"10.9.9.9, 198.51.100.1"}, lb, "198.51.100.1"},
		{"two trusted hops", "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.1, 10.0.0.9"}, lb, "198.51.100.1"},
		{"hops across headers", "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.1", "10.0.0.9"}, lb, "198.51.100.1"},
		{"every hop trusted: the furthest", "10.0.0.2:4000", []string{"10.0.0.7,10.0.0.9"}, lb, "10.0.0.7"},
		{"garbage from a trusted hop: that hop", "10.0.0.2:4000", []string{"198.51.100.1, unknown, 10.0.0.9"}, lb, "10.0.0.9"},
		{"empty entries skipped", "10.0.0.2:4000", []string{" , 198.51.100.1 ,"}, lb, "198.51.100.1"},
		{"entry with a port", "10.0.0.2:4000", []string{"198.51.100.1:5555"}, lb, "198.51.100.1"},
		{"IPv6 peer and client", "[fd00::1]:4000", []string{"2001:db8::7"}, lb, "2001:db8::7"},
		{"mapped IPv4 is IPv4", "[::ffff:10.0.0.2]:4000", []string{"::ffff:198.51.100.1"}, lb, "198.51.100.1"},
		{"bracketed IPv6 entry", "10.0.0.2:4000", []string{"[2001:db8::7]:80"}, lb, "2001:db8::7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}
