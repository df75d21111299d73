// Package netguardtest gives tests names that resolve where they choose, so the guard can be seen
// refusing a name (not only an address) without touching the machine's DNS.
package netguardtest

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
)

// Resolver answers from names instead of the network: each name's A and AAAA records, in order;
// any other name does not exist. Dial it through a net.Dialer's Resolver field.
func Resolver(names map[string][]string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go answerDNS(server, names)
		return client, nil
	}}
}

// answerDNS serves one query in TCP framing (a net.Pipe is not a PacketConn, so the resolver frames
// its query with a length): the question echoed, then one answer per matching address.
func answerDNS(c net.Conn, names map[string][]string) {
	defer c.Close()
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	q := make([]byte, int(n[0])<<8|int(n[1]))
	if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
		return
	}
	i, labels := 12, []string{}
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return
	}
	qtype := uint16(q[i+1])<<8 | uint16(q[i+2])
	question := q[12 : i+5]
	var answers [][]byte
	for _, a := range names[strings.ToLower(strings.Join(labels, "."))] {
		ip := netip.MustParseAddr(a)
		var rdata []byte
		switch {
		case qtype == 1 && ip.Is4():
			b := ip.As4()
			rdata = b[:]
		case qtype == 28 && ip.Is6():
			b := ip.As16()
			rdata = b[:]
		default:
			continue
		}
		rr := []byte{0xc0, 12, byte(qtype >> 8), byte(qtype), 0, 1, 0, 0, 0, 60, 0, byte(len(rdata))}
		answers = append(answers, append(rr, rdata...))
	}
	resp := []byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, byte(len(answers)), 0, 0, 0, 0}
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	_, _ = c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
}
