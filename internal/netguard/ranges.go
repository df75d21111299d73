package netguard

import "net/netip"

type special struct {
	prefix netip.Prefix
	name   string
}

func ranges(list ...string) []special {
	out := make([]special, 0, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		out = append(out, special{netip.MustParsePrefix(list[i]), list[i+1]})
	}
	return out
}

// v4Special are the IPv4 ranges that are not the public internet (IANA's special-purpose registry,
// RFC 6890 and successors), most specific first. What is not listed is public.
var v4Special = ranges(
	"0.0.0.0/32", "unspecified",
	"0.0.0.0/8", "this-network", // Linux connects 0.0.0.0 to the local host
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "shared (CGNAT)",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local", // cloud metadata lives here
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignment",
	"192.0.2.0/24", "documentation",
	"192.88.99.0/24", "6to4 relay",
	"192.168.0.0/16", "private",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "broadcast",
	"240.0.0.0/4", "reserved",
)

// v6Special are the non-public IPv6 ranges inside global unicast (2000::/3) and the named ones
// outside it; everything else outside 2000::/3 is reserved. IPv4-mapped and NAT64 addresses are
// judged by the IPv4 address they lead to, before this list.
var v6Special = ranges(
	"::/128", "unspecified",
	"::1/128", "loopback",
	"::/96", "IPv4-compatible",
	"64:ff9b:1::/48", "NAT64 local-use",
	"100::/64", "discard-only",
	"2001::/32", "Teredo",
	"2001:2::/48", "benchmarking",
	"2001::/23", "IETF protocol assignment",
	"2001:db8::/32", "documentation",
	"2002::/16", "6to4",
	"3fff::/20", "documentation",
	"fc00::/7", "unique local (private)",
	"fe80::/10", "link-local",
	"fec0::/10", "site-local",
	"ff00::/8", "multicast",
)

var (
	globalUnicast = netip.MustParsePrefix("2000::/3")
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
)

// NonPublic names the range ip falls in when it is not a public unicast address: loopback,
// private, link-local, multicast, unspecified, and the other special-purpose ranges, in IPv4,
// IPv6, and the IPv6 forms that lead to an IPv4 address (mapped ::ffff:a.b.c.d, NAT64
// 64:ff9b::a.b.c.d). ok is false only for a public address; an invalid Addr counts as non-public.
func NonPublic(ip netip.Addr) (name string, ok bool) {
	ip = ip.WithZone("")
	switch {
	case !ip.IsValid():
		return "invalid", true
	case ip.Is4():
		return lookup(v4Special, ip)
	}
	if v4, embeds := embeddedV4(ip); embeds {
		name, ok := lookup(v4Special, v4)
		if !ok {
			return "", false
		}
		if ip.Is4In6() {
			return "IPv4-mapped " + name, true
		}
		return "NAT64 " + name, true
	}
	if name, ok := lookup(v6Special, ip); ok {
		return name, true
	}
	if !globalUnicast.Contains(ip) {
		return "reserved", true
	}
	return "", false
}

func lookup(list []special, ip netip.Addr) (string, bool) {
	for _, s := range list {
		if s.prefix.Contains(ip) {
			return s.name, true
		}
	}
	return "", false
}

// embeddedV4 is the IPv4 address an IPv4-mapped or NAT64 well-known-prefix address leads to.
func embeddedV4(ip netip.Addr) (netip.Addr, bool) {
	switch {
	case ip.Is4In6():
		return ip.Unmap(), true
	case ip.Is6() && nat64.Contains(ip):
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	return netip.Addr{}, false
}
