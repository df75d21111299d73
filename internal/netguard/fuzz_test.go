package netguard

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzNonPublic checks the range table against the standard library's own notion of special
// addresses, and that every IPv6 form of an IPv4 address is judged like that address.
func FuzzNonPublic(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "169.254.169.254", "::1", "fe80::1", "fd00::1",
		"2606:4700::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "ff02::1", "255.255.255.255", "0.0.0.0"} {
		b, _ := netip.MustParseAddr(s).MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ip netip.Addr
		if err := ip.UnmarshalBinary(b); err != nil || !ip.IsValid() {
			return
		}
		name, refused := NonPublic(ip)
		if refused == (name == "") {
			t.Fatalf("NonPublic(%s) = %q, %v", ip, name, refused)
		}
		special := ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast()
		if special && !refused {
			t.Fatalf("%s is special to net/netip but passes", ip)
		}
		err := Policy{}.Check(ip)
		var re *RefusedError
		if refused != (err != nil) || (err != nil && (!errors.As(err, &re) || re.Range != name)) {
			t.Fatalf("Check(%s) = %v, NonPublic says %q", ip, err, name)
		}
		if err := (Policy{AllowPrivate: true}).Check(ip); err != nil {
			t.Fatalf("allow_private refuses %s: %v", ip, err)
		}
		if err := (Policy{Allow: []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}}).Check(ip); err != nil {
			t.Fatalf("%s/%d allowed, yet %s refused: %v", ip, ip.BitLen(), ip, err)
		}
		if !ip.Is4() {
			return
		}
		v4 := ip.As4()
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
		nat := netip.AddrFrom16([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
		for _, form := range []netip.Addr{mapped, nat} {
			if _, r := NonPublic(form); r != refused {
				t.Fatalf("%s is refused %v, but %s %v", form, r, ip, refused)
			}
			if refused && (Policy{Allow: []netip.Prefix{netip.PrefixFrom(ip, 32)}}).Check(form) != nil {
				t.Fatalf("%s allowed, yet %s refused", ip, form)
			}
		}
	})
}

// FuzzCheckHost runs callback URLs through the create-time check: it never panics, judges IP
// literals exactly as the dial-time check would, and never refuses a name that is not numeric or
// localhost.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/cb", "https://[::1]/x", "http://[fe80::1%25eth0]/", "http://localhost./",
		"http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "https://agent.example/cb?k=v", "http://[::ffff:10.0.0.1]/",
		"http://1.2.3/", "http://a.localhost:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		host := u.Hostname()
		err = Policy{}.CheckHost(host)
		var re *RefusedError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("CheckHost(%q) = %v, not a refusal", host, err)
		}
		if err := (Policy{AllowPrivate: true}).CheckHost(host); err != nil {
			t.Fatalf("allow_private refuses %q: %v", host, err)
		}
		trimmed := strings.TrimSuffix(host, ".")
		if ip, perr := netip.ParseAddr(trimmed); perr == nil {
			if (err != nil) != (Policy{}.Check(ip) != nil) {
				t.Fatalf("CheckHost(%q) = %v, Check(%s) disagrees", host, err, ip)
			}
			return
		}
		lower := strings.ToLower(trimmed)
		if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
			if err == nil {
				t.Fatalf("%q passes", host)
			}
			return
		}
		if err != nil && strings.Trim(lower, "0123456789abcdefx.") != "" {
			t.Fatalf("the name %q is refused before it is resolved: %v", host, err)
		}
		if ip, ok := legacyIPv4(trimmed); ok {
			if (err != nil) != (Policy{}.Check(ip) != nil) {
				t.Fatalf("CheckHost(%q) = %v, its address %s disagrees", host, err, ip)
			}
			// Its dotted-decimal form means the same address.
			if back, ok := legacyIPv4(ip.String()); !ok || back != ip {
				t.Fatalf("%q is %s, but %s reads back as %s", host, ip, ip, back)
			}
		}
	})
}
