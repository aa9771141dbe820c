package packet

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// The builders below append complete packets with correct lengths and checksums to a
// caller-owned slice, so that tests, benchmarks and capture generators can reuse one
// buffer (b = AppendTCP(b[:0], spec)). They are for trusted input: an IPv4 source with
// an IPv6 destination is a programming error and panics.

// DefaultTTL is the TTL or hop limit used when a spec leaves it zero.
const DefaultTTL = 64

// IPSpec describes an IP header. A zero TTL means DefaultTTL.
type IPSpec struct {
	Src, Dst netip.Addr
	Proto    Proto
	TTL      uint8
	TOS      uint8  // IPv4 TOS or IPv6 traffic class
	IPID     uint16 // IPv4 identification (IPv6 has none outside fragment headers)
	DontFrag bool   // IPv4 DF bit
}

// TCPSpec describes a TCP segment in an IPv4 or IPv6 packet, chosen by the address
// family of Src and Dst. Options with their Has flag (or SACKPermitted, NumSACK) set
// are emitted in the order Linux uses; SACK blocks that do not fit in the 40 option
// bytes are dropped.
type TCPSpec struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    TCPFlags
	Window   uint16
	Options  TCPOptions
	Payload  []byte
	TTL      uint8
	TOS      uint8
	IPID     uint16
	DontFrag bool
}

// UDPSpec describes a UDP datagram in an IPv4 or IPv6 packet.
type UDPSpec struct {
	Src, Dst netip.AddrPort
	Payload  []byte
	TTL      uint8
	TOS      uint8
	IPID     uint16
	DontFrag bool
	// NoChecksum leaves the UDP checksum zero, which IPv4 allows and IPv6 does not.
	NoChecksum bool
}

// ICMPEchoSpec describes an ICMP or ICMPv6 echo request or reply.
type ICMPEchoSpec struct {
	Src, Dst netip.Addr
	Reply    bool
	ID, Seq  uint16
	Payload  []byte
	TTL      uint8
	IPID     uint16
}

// ICMPErrorSpec describes an ICMP or ICMPv6 error message quoting another packet.
// Rest is the second word of the ICMP header: the next-hop MTU for "fragmentation
// needed" (v4 type 3 code 4, in the low 16 bits), the MTU for "packet too big"
// (v6 type 2), the pointer for parameter problems, the gateway for redirects.
type ICMPErrorSpec struct {
	Type, Code uint8
	Src, Dst   netip.Addr
	Rest       uint32
	Quoted     []byte // the offending packet from its IP header on; clipped as routers do
	TTL        uint8
	IPID       uint16
}

// Quoted data is clipped so the whole error fits the size routers keep to: 576 bytes
// for ICMP (RFC 1812 section 4.3.2.3) and the minimum MTU of 1280 for ICMPv6
// (RFC 4443 section 2.4).
const (
	maxICMPv4Error = 576
	maxICMPv6Error = 1280
)

// EtherType values used by the builders and the decoder.
const (
	EtherTypeIPv4  uint16 = 0x0800
	EtherTypeARP   uint16 = 0x0806
	EtherTypeVLAN  uint16 = 0x8100 // 802.1Q customer tag
	EtherTypeIPv6  uint16 = 0x86dd
	EtherTypeQinQ  uint16 = 0x88a8 // 802.1ad service tag
	EtherTypeQinQ2 uint16 = 0x9100 // pre-standard service tag
)

// extend grows b by n zeroed bytes and returns the grown slice and the new bytes.
// The bytes are cleared because a reused buffer may hold an older packet there.
func extend(b []byte, n int) (grown, added []byte) {
	b = slices.Grow(b, n)
	l := len(b)
	b = b[:l+n]
	clear(b[l:])
	return b, b[l:]
}

func checkFamilies(src, dst netip.Addr) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		panic("packet: builder needs a valid source and destination of the same address family")
	}
}

func ipHeaderLen(src netip.Addr) int {
	if src.Is4() {
		return 20
	}
	return 40
}

// putIPHeader writes an IPv4 or IPv6 header for an upper-layer payload of
// payloadLen bytes into h, which must be ipHeaderLen bytes long.
func putIPHeader(h []byte, s IPSpec, payloadLen int) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if s.Src.Is4() {
		h[0] = 0x45
		h[1] = s.TOS
		binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
		binary.BigEndian.PutUint16(h[4:], s.IPID)
		if s.DontFrag {
			h[6] = 0x40
		}
		h[8] = ttl
		h[9] = uint8(s.Proto)
		a, b := s.Src.As4(), s.Dst.As4()
		copy(h[12:16], a[:])
		copy(h[16:20], b[:])
		binary.BigEndian.PutUint16(h[10:], Checksum(h[:20]))
		return
	}
	h[0] = 0x60 | s.TOS>>4
	h[1] = s.TOS << 4
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6] = uint8(s.Proto)
	h[7] = ttl
	a, b := s.Src.As16(), s.Dst.As16()
	copy(h[8:24], a[:])
	copy(h[24:40], b[:])
}

// AppendIP appends an IP header and payload as given: no transport checksum is
// computed, so it suits protocols the decoder only tracks by address (GRE, ESP) and
// hand-made malformed transport headers.
func AppendIP(b []byte, s IPSpec, payload []byte) []byte {
	checkFamilies(s.Src, s.Dst)
	hl := ipHeaderLen(s.Src)
	b, pkt := extend(b, hl+len(payload))
	putIPHeader(pkt[:hl], s, len(payload))
	copy(pkt[hl:], payload)
	return b
}

// tcpOptionsLen is the length of the option bytes AppendTCP emits for o, padded to
// a multiple of 4, and the number of SACK blocks that fit.
func tcpOptionsLen(o *TCPOptions) (n, sacks int) {
	if o.HasMSS {
		n += 4
	}
	switch {
	case o.HasTimestamps:
		n += 12 // timestamps behind SACK-permitted or two NOPs
	case o.SACKPermitted:
		n += 4 // NOP NOP SACK-permitted
	}
	if o.HasWScale {
		n += 4
	}
	sacks = min(int(o.NumSACK), len(o.SACK))
	if sacks > 0 {
		sacks = max(min(sacks, (40-n-4)/8), 0)
		if sacks > 0 {
			n += 4 + 8*sacks
		}
	}
	return n, sacks
}

// putTCPOptions writes the options into h, which is exactly tcpOptionsLen bytes.
func putTCPOptions(h []byte, o *TCPOptions, sacks int) {
	i := 0
	if o.HasMSS {
		h[0], h[1] = 2, 4
		binary.BigEndian.PutUint16(h[2:], o.MSS)
		i = 4
	}
	switch {
	case o.SACKPermitted && o.HasTimestamps:
		h[i], h[i+1] = 4, 2
		i += 2
	case o.SACKPermitted:
		h[i], h[i+1], h[i+2], h[i+3] = 1, 1, 4, 2
		i += 4
	case o.HasTimestamps:
		h[i], h[i+1] = 1, 1
		i += 2
	}
	if o.HasTimestamps {
		h[i], h[i+1] = 8, 10
		binary.BigEndian.PutUint32(h[i+2:], o.TSVal)
		binary.BigEndian.PutUint32(h[i+6:], o.TSEcr)
		i += 10
	}
	if o.HasWScale {
		h[i], h[i+1], h[i+2], h[i+3] = 1, 3, 3, o.WScale
		i += 4
	}
	if sacks > 0 {
		h[i], h[i+1], h[i+2], h[i+3] = 1, 1, 5, uint8(2+8*sacks)
		i += 4
		for _, blk := range o.SACK[:sacks] {
			binary.BigEndian.PutUint32(h[i:], blk.Left)
			binary.BigEndian.PutUint32(h[i+4:], blk.Right)
			i += 8
		}
	}
}

// AppendTCP appends a raw IPv4 or IPv6 packet holding one TCP segment.
func AppendTCP(b []byte, s TCPSpec) []byte {
	src, dst := s.Src.Addr(), s.Dst.Addr()
	checkFamilies(src, dst)
	optLen, sacks := tcpOptionsLen(&s.Options)
	hl := ipHeaderLen(src)
	tcpLen := 20 + optLen + len(s.Payload)
	b, pkt := extend(b, hl+tcpLen)
	putIPHeader(pkt[:hl], IPSpec{Src: src, Dst: dst, Proto: ProtoTCP, TTL: s.TTL, TOS: s.TOS, IPID: s.IPID, DontFrag: s.DontFrag}, tcpLen)
	t := pkt[hl:]
	binary.BigEndian.PutUint16(t[0:], s.Src.Port())
	binary.BigEndian.PutUint16(t[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(t[4:], s.Seq)
	binary.BigEndian.PutUint32(t[8:], s.Ack)
	t[12] = uint8((20+optLen)/4) << 4
	t[13] = uint8(s.Flags)
	binary.BigEndian.PutUint16(t[14:], s.Window)
	putTCPOptions(t[20:20+optLen], &s.Options, sacks)
	copy(t[20+optLen:], s.Payload)
	sum := pseudoHeaderSum(src, dst, ProtoTCP, tcpLen)
	binary.BigEndian.PutUint16(t[16:], checksumFold(checksumAdd(sum, t)))
	return b
}

// AppendUDP appends a raw IPv4 or IPv6 packet holding one UDP datagram.
func AppendUDP(b []byte, s UDPSpec) []byte {
	src, dst := s.Src.Addr(), s.Dst.Addr()
	checkFamilies(src, dst)
	hl := ipHeaderLen(src)
	udpLen := 8 + len(s.Payload)
	b, pkt := extend(b, hl+udpLen)
	putIPHeader(pkt[:hl], IPSpec{Src: src, Dst: dst, Proto: ProtoUDP, TTL: s.TTL, TOS: s.TOS, IPID: s.IPID, DontFrag: s.DontFrag}, udpLen)
	u := pkt[hl:]
	binary.BigEndian.PutUint16(u[0:], s.Src.Port())
	binary.BigEndian.PutUint16(u[2:], s.Dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen))
	copy(u[8:], s.Payload)
	if !s.NoChecksum {
		c := checksumFold(checksumAdd(pseudoHeaderSum(src, dst, ProtoUDP, udpLen), u))
		if c == 0 {
			c = 0xffff // zero means "no checksum" (RFC 768)
		}
		binary.BigEndian.PutUint16(u[6:], c)
	}
	return b
}

// appendICMP appends an IP packet holding an ICMP or ICMPv6 message made of the
// 4-byte type/code/checksum header, a 4-byte rest-of-header word and body.
func appendICMP(b []byte, src, dst netip.Addr, ttl uint8, ipid uint16, typ, code uint8, rest uint32, body []byte) []byte {
	checkFamilies(src, dst)
	proto := ProtoICMP
	if src.Is6() {
		proto = ProtoICMPv6
	}
	hl := ipHeaderLen(src)
	icmpLen := 8 + len(body)
	b, pkt := extend(b, hl+icmpLen)
	putIPHeader(pkt[:hl], IPSpec{Src: src, Dst: dst, Proto: proto, TTL: ttl, IPID: ipid}, icmpLen)
	m := pkt[hl:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], rest)
	copy(m[8:], body)
	var sum uint64
	if proto == ProtoICMPv6 {
		sum = pseudoHeaderSum(src, dst, proto, icmpLen)
	}
	binary.BigEndian.PutUint16(m[2:], checksumFold(checksumAdd(sum, m)))
	return b
}

// AppendICMPEcho appends an ICMP (IPv4) or ICMPv6 echo request or reply.
func AppendICMPEcho(b []byte, s ICMPEchoSpec) []byte {
	var typ uint8
	switch {
	case s.Src.Is4() && s.Reply:
		typ = 0
	case s.Src.Is4():
		typ = 8
	case s.Reply:
		typ = 129
	default:
		typ = 128
	}
	return appendICMP(b, s.Src, s.Dst, s.TTL, s.IPID, typ, 0, uint32(s.ID)<<16|uint32(s.Seq), s.Payload)
}

// AppendICMPError appends an ICMP or ICMPv6 error from src to dst quoting the packet
// quoted (from its IP header on), clipped to the size routers send.
func AppendICMPError(b []byte, typ, code uint8, src, dst netip.Addr, quoted []byte) []byte {
	return AppendICMPErrorSpec(b, ICMPErrorSpec{Type: typ, Code: code, Src: src, Dst: dst, Quoted: quoted})
}

// AppendICMPErrorSpec is AppendICMPError with every header field settable.
func AppendICMPErrorSpec(b []byte, s ICMPErrorSpec) []byte {
	limit := maxICMPv4Error - 20 - 8
	if s.Src.Is6() {
		limit = maxICMPv6Error - 40 - 8
	}
	q := s.Quoted
	if len(q) > limit {
		q = q[:limit]
	}
	return appendICMP(b, s.Src, s.Dst, s.TTL, s.IPID, s.Type, s.Code, s.Rest, q)
}

// etherTypeOf returns the EtherType for a raw IP packet from its version nibble.
func etherTypeOf(ipPacket []byte) uint16 {
	if len(ipPacket) > 0 && ipPacket[0]>>4 == 6 {
		return EtherTypeIPv6
	}
	return EtherTypeIPv4
}

// AppendEthernet appends an Ethernet II frame carrying ipPacket (EtherType from its
// version nibble). vlans are listed outermost first; every tag but the innermost is
// an 802.1ad service tag (0x88a8), the innermost an 802.1Q tag (0x8100).
func AppendEthernet(b []byte, srcMAC, dstMAC [6]byte, vlans []uint16, ipPacket []byte) []byte {
	return AppendEthernetType(b, srcMAC, dstMAC, vlans, etherTypeOf(ipPacket), ipPacket)
}

// AppendEthernetType is AppendEthernet for any payload and EtherType (ARP, LLDP...).
func AppendEthernetType(b []byte, srcMAC, dstMAC [6]byte, vlans []uint16, etherType uint16, payload []byte) []byte {
	b, f := extend(b, 14+4*len(vlans)+len(payload))
	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	i := 12
	for n, id := range vlans {
		tpid := EtherTypeQinQ
		if n == len(vlans)-1 {
			tpid = EtherTypeVLAN
		}
		binary.BigEndian.PutUint16(f[i:], tpid)
		binary.BigEndian.PutUint16(f[i+2:], id&0x0fff)
		i += 4
	}
	binary.BigEndian.PutUint16(f[i:], etherType)
	copy(f[i+2:], payload)
	return b
}

// Linux packet types carried by SLL and SLL2 headers.
const (
	PacketHost      uint8 = 0 // to us
	PacketBroadcast uint8 = 1
	PacketMulticast uint8 = 2
	PacketOtherHost uint8 = 3
	PacketOutgoing  uint8 = 4
)

const arphrdEther = 1 // ARPHRD_ETHER: the link address is a 6-byte MAC

// AppendSLL appends a Linux cooked capture v1 header (16 bytes) and ipPacket.
func AppendSLL(b []byte, packetType uint8, srcMAC [6]byte, ipPacket []byte) []byte {
	b, f := extend(b, 16+len(ipPacket))
	binary.BigEndian.PutUint16(f[0:], uint16(packetType))
	binary.BigEndian.PutUint16(f[2:], arphrdEther)
	binary.BigEndian.PutUint16(f[4:], 6)
	copy(f[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(f[14:], etherTypeOf(ipPacket))
	copy(f[16:], ipPacket)
	return b
}

// AppendSLL2 appends a Linux cooked capture v2 header (20 bytes) and ipPacket.
func AppendSLL2(b []byte, ifIndex int32, packetType uint8, srcMAC [6]byte, ipPacket []byte) []byte {
	b, f := extend(b, 20+len(ipPacket))
	binary.BigEndian.PutUint16(f[0:], etherTypeOf(ipPacket))
	binary.BigEndian.PutUint32(f[4:], uint32(ifIndex))
	binary.BigEndian.PutUint16(f[8:], arphrdEther)
	f[10] = packetType
	f[11] = 6
	copy(f[12:18], srcMAC[:])
	copy(f[20:], ipPacket)
	return b
}

// BSD address families as loopback headers carry them. AF_INET6 differs between the
// BSDs; AppendNull and AppendLoop write 24 (NetBSD, OpenBSD) and the decoder accepts
// all three values.
const (
	afInet         = 2
	afInet6BSD     = 24 // NetBSD, OpenBSD
	afInet6FreeBSD = 28 // FreeBSD
	afInet6Darwin  = 30 // Darwin
)

func loopbackFamily(ipPacket []byte) uint32 {
	if etherTypeOf(ipPacket) == EtherTypeIPv6 {
		return afInet6BSD
	}
	return afInet
}

// AppendNull appends a BSD null/loopback header (address family in this machine's
// byte order, as the capturing host wrote it) and ipPacket.
func AppendNull(b []byte, ipPacket []byte) []byte {
	b, f := extend(b, 4+len(ipPacket))
	binary.NativeEndian.PutUint32(f, loopbackFamily(ipPacket))
	copy(f[4:], ipPacket)
	return b
}

// AppendLoop appends an OpenBSD loopback header (address family in network byte
// order) and ipPacket.
func AppendLoop(b []byte, ipPacket []byte) []byte {
	b, f := extend(b, 4+len(ipPacket))
	binary.BigEndian.PutUint32(f, loopbackFamily(ipPacket))
	copy(f[4:], ipPacket)
	return b
}
