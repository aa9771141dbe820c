package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"keepstate/packet"
)

// connKey names a connection whatever the direction of a packet: the protocol and
// both endpoints, lower one first.
type connKey struct {
	Proto packet.Proto
	Lo    netip.AddrPort
	Hi    netip.AddrPort
}

func connKeyOf(p *Packet) connKey {
	a, b := p.Src, p.Dst
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return connKey{Proto: p.Proto, Lo: a, Hi: b}
}

// roles decides which endpoint of a connection is the client (it sent the request
// that opened it) from its packets in time order: the sender of a SYN, the receiver
// of a SYN-ACK, the sender of an echo request; else, when no opening was captured,
// the endpoint with the higher port (servers listen on the low, well-known ones),
// else whoever spoke first.
func roles(k connKey, first func(yield func(*Packet) bool)) (client, server netip.AddrPort) {
	var firstSrc netip.AddrPort
	found := false
	first(func(p *Packet) bool {
		if !firstSrc.IsValid() {
			firstSrc = p.Src
		}
		switch {
		case p.Proto == packet.ProtoTCP && p.Flags&(packet.SYN|packet.ACK) == packet.SYN:
			client, found = p.Src, true
		case p.Proto == packet.ProtoTCP && p.Flags&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK:
			client, found = p.Dst, true
		case (p.Proto == packet.ProtoICMP && p.ICMPType == 8) || (p.Proto == packet.ProtoICMPv6 && p.ICMPType == 128):
			client, found = p.Src, true
		}
		return !found
	})
	if !found {
		lo, hi := k.Lo.Port(), k.Hi.Port()
		switch {
		case k.Proto == packet.ProtoTCP && lo != hi, k.Proto == packet.ProtoUDP && min(lo, hi) < 1024 && max(lo, hi) >= 1024:
			client = k.Lo
			if lo < hi {
				client = k.Hi
			}
		default:
			client = firstSrc
		}
	}
	server = k.Lo
	if client == k.Lo {
		server = k.Hi
	}
	return client, server
}

// endpoint formats an address and port as "10.0.0.1:80" or "[2001:db8::1]:80", or
// the bare address for protocols without ports.
func endpoint(ap netip.AddrPort, proto packet.Proto) string {
	if proto == packet.ProtoTCP || proto == packet.ProtoUDP {
		return ap.String()
	}
	return ap.Addr().String()
}

// protoName is the lower-case protocol name used in reports and explain specs.
func protoName(p packet.Proto) string { return strings.ToLower(p.String()) }

// flagString writes TCP flags as tcpdump does: S, F, R, P, U, E, W and "." for ACK.
func flagString(f packet.TCPFlags) string {
	var b strings.Builder
	for _, x := range []struct {
		f packet.TCPFlags
		c byte
	}{{packet.SYN, 'S'}, {packet.FIN, 'F'}, {packet.RST, 'R'}, {packet.PSH, 'P'}, {packet.URG, 'U'}, {packet.ECE, 'E'}, {packet.CWR, 'W'}, {packet.ACK, '.'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// describe summarises a packet in one short line for timelines.
func describe(p *Packet) string {
	switch p.Proto {
	case packet.ProtoTCP:
		return fmt.Sprintf("[%s] seq %d ack %d len %d", flagString(p.Flags), p.Seq, p.Ack, p.PayloadLen)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return fmt.Sprintf("type %d len %d", p.ICMPType, p.PayloadLen)
	}
	return fmt.Sprintf("len %d", p.PayloadLen)
}
