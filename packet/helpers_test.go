package packet

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Hand-building helpers for tests: they take a builder's raw IP packet and bend it
// into the shape a test needs, fixing lengths and the IPv4 header checksum.

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
)

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func tcp4(flags TCPFlags, payload []byte) []byte {
	return AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Seq: 1000, Ack: 2000, Flags: flags, Window: 512, Payload: payload, IPID: 77, DontFrag: true})
}

func tcp6(flags TCPFlags, payload []byte) []byte {
	return AppendTCP(nil, TCPSpec{Src: ap(v6a, 40000), Dst: ap(v6b, 443), Seq: 1000, Ack: 2000, Flags: flags, Window: 512, Payload: payload, TTL: 5})
}

func udp4(payload []byte) []byte {
	return AppendUDP(nil, UDPSpec{Src: ap(v4a, 5000), Dst: ap(v4b, 53), Payload: payload})
}

func udp6(payload []byte) []byte {
	return AppendUDP(nil, UDPSpec{Src: ap(v6a, 5000), Dst: ap(v6b, 53), Payload: payload})
}

// fixIPv4 rewrites the total length to len(pkt) and recomputes the header checksum.
func fixIPv4(pkt []byte) []byte {
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	ihl := int(pkt[0]&0x0f) * 4
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:], Checksum(pkt[:ihl]))
	return pkt
}

// withIPv4Options inserts opts (a multiple of 4 bytes) after the fixed IPv4 header.
func withIPv4Options(pkt, opts []byte) []byte {
	out := slices.Concat(pkt[:20], opts, pkt[20:])
	out[0] = 0x40 | uint8((20+len(opts))/4)
	return fixIPv4(out)
}

// fragment4 keeps the first keep bytes of the IPv4 payload and marks the packet as a
// fragment at byte offset off with the MF bit as given.
func fragment4(pkt []byte, off int, more bool, keep int) []byte {
	out := slices.Clone(pkt[:20+keep])
	v := uint16(off / 8)
	if more {
		v |= 0x2000
	}
	binary.BigEndian.PutUint16(out[6:], v)
	return fixIPv4(out)
}

// ext6 is one IPv6 extension header for withIPv6Ext: its type and total size. The
// next-header and length bytes are filled in; set bytes after them in body.
type ext6 struct {
	typ  uint8
	size int
	body []byte // bytes from offset 2 on (optional)
}

// withIPv6Ext inserts the extension headers after the fixed IPv6 header, chaining
// their next-header fields and fixing the payload length.
func withIPv6Ext(pkt []byte, exts ...ext6) []byte {
	out := slices.Clone(pkt[:40])
	last := pkt[6]
	if len(exts) > 0 {
		out[6] = exts[0].typ
	}
	for i, e := range exts {
		h := make([]byte, e.size)
		copy(h[2:], e.body)
		h[0] = last
		if i+1 < len(exts) {
			h[0] = exts[i+1].typ
		}
		switch e.typ {
		case ipv6Fragment:
		case ipv6AH:
			h[1] = uint8(e.size/4 - 2)
		default:
			h[1] = uint8(e.size/8 - 1)
		}
		out = append(out, h...)
	}
	out = append(out, pkt[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

// fragBody returns the bytes after next-header of a fragment header body.
func fragBody(off int, more bool, id uint32) []byte {
	b := make([]byte, 6)
	v := uint16(off) &^ 7
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[0:], v)
	binary.BigEndian.PutUint32(b[2:], id)
	return b
}

// setTCPDataOffset rewrites the data offset of the TCP header at l4.
func setTCPDataOffset(pkt []byte, l4 int, words uint8) []byte {
	out := slices.Clone(pkt)
	out[l4+12] = words<<4 | out[l4+12]&0x0f
	return out
}

// withTCPOptions replaces the TCP options of a v4 packet without options by raw
// option bytes (a multiple of 4), fixing the data offset and lengths; the TCP
// checksum is left stale.
func withTCPOptions(pkt, opts []byte) []byte {
	out := slices.Concat(pkt[:40], opts, pkt[40:])
	out[32] = uint8((20+len(opts))/4) << 4
	return fixIPv4(out)
}

func eth(vlans []uint16, ip []byte) []byte { return AppendEthernet(nil, macA, macB, vlans, ip) }

// setIPLen returns a copy of the raw IP packet pkt with its length field (IPv4
// total length, IPv6 payload length) set to n, as a segmentation offload send
// leaves it at 0. The IPv4 header checksum is left as it was: such a send's is
// the NIC's to fill in.
func setIPLen(pkt []byte, n uint16) []byte {
	b := slices.Clone(pkt)
	at := 2
	if b[0]>>4 == 6 {
		at = 4
	}
	b[at], b[at+1] = byte(n>>8), byte(n)
	return b
}

// setUDPLen returns a copy of the raw IP packet pkt, carrying UDP without IP
// options or extension headers, with the UDP length set to n (the UDP checksum
// left as it was).
func setUDPLen(pkt []byte, n uint16) []byte {
	b := slices.Clone(pkt)
	at := 20 + 4
	if b[0]>>4 == 6 {
		at = 40 + 4
	}
	b[at], b[at+1] = byte(n>>8), byte(n)
	return b
}

// padTo60 pads an Ethernet frame to the 60-byte minimum, as a NIC does.
func padTo60(frame []byte) []byte {
	return append(frame, make([]byte, max(0, 60-len(frame)))...)
}
