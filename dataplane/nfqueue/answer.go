package nfqueue

import (
	"net/netip"

	"keepstate/packet"
)

// ICMP "administratively prohibited": the answer of a Deny rule to anything but TCP.
const (
	icmpv4Unreachable     = 3
	icmpv4AdminProhibited = 13 // communication administratively prohibited (RFC 1812)
	icmpv6Unreachable     = 1
	icmpv6AdminProhibited = 1 // communication with destination administratively prohibited
	answerTTL             = 64
)

// appendAnswer appends the packet that refuses p (decoded from frame, a raw IP
// packet) to b: a TCP RST for TCP, an ICMP or ICMPv6 destination unreachable
// (administratively prohibited) quoting the packet otherwise. ok is false when
// the packet must not be answered: an RST, an ICMP error, a fragment without
// its transport header, or a source or destination that is not a unicast host
// (answering those would amplify spoofed or broadcast traffic).
//
// The answer comes from the address the client tried to reach, as if that host
// refused: it needs no knowledge of the firewall's own addresses, and both TCP
// and the ICMP error handling of the sender match it to the right socket.
func appendAnswer(b []byte, p *packet.Parsed, frame []byte) ([]byte, bool) {
	if p.IPVersion == 0 || !unicastHost(p.Src) || !unicastHost(p.Dst) || p.Frag == packet.LaterFragment {
		return b, false
	}
	if p.Proto == packet.ProtoTCP {
		if p.TCPFlags&packet.RST != 0 {
			return b, false
		}
		s := packet.TCPSpec{
			Src: netip.AddrPortFrom(p.Dst, p.DstPort),
			Dst: netip.AddrPortFrom(p.Src, p.SrcPort),
			TTL: answerTTL,
		}
		// RFC 9293 section 3.10.7.1: a segment with ACK is answered by an RST
		// carrying its acknowledgement number as sequence number; otherwise by
		// RST+ACK acknowledging everything the segment occupied.
		if p.TCPFlags&packet.ACK != 0 {
			s.Seq, s.Flags = p.Ack, packet.RST
		} else {
			ack := p.Seq + uint32(p.PayloadLen)
			if p.TCPFlags&packet.SYN != 0 {
				ack++
			}
			if p.TCPFlags&packet.FIN != 0 {
				ack++
			}
			s.Ack, s.Flags = ack, packet.RST|packet.ACK
		}
		return packet.AppendTCP(b, s), true
	}
	if p.IsICMPError() {
		return b, false
	}
	if p.IPOffset < 0 || p.IPOffset >= len(frame) {
		return b, false
	}
	spec := packet.ICMPErrorSpec{Src: p.Dst, Dst: p.Src, Quoted: frame[p.IPOffset:], TTL: answerTTL}
	if p.IPVersion == 4 {
		spec.Type, spec.Code = icmpv4Unreachable, icmpv4AdminProhibited
	} else {
		spec.Type, spec.Code = icmpv6Unreachable, icmpv6AdminProhibited
	}
	return packet.AppendICMPErrorSpec(b, spec), true
}

// unicastHost reports whether a may be the address of one host that sent or
// receives a packet.
func unicastHost(a netip.Addr) bool {
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	return true
}
