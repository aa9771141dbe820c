// Package packet decodes link, network and transport headers into a caller-owned
// Parsed value without allocating.
//
// The decoder keeps no state and never reads outside the slice it is given: truncated
// or inconsistent input returns an Error that says what was wrong, and a Parsed that
// holds every header decoded before the problem. Checksums are verified by a separate
// call because most callers (NFQUEUE after the kernel's own checks, replay of offloaded
// captures) must not pay for them or cannot trust them.
package packet

import "net/netip"

// LinkType is a capture link-layer type, numbered as the pcap LINKTYPE_ values so that
// captures map onto it directly.
type LinkType uint16

const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family in host byte order
	LinkEthernet  LinkType = 1   // Ethernet II, with any number of 802.1Q / 802.1ad tags
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6, version from the first nibble (NFQUEUE)
	LinkLoop      LinkType = 108 // OpenBSD loopback: address family in network byte order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any, old)
	LinkIPv4      LinkType = 228 // raw IPv4 only
	LinkIPv6      LinkType = 229 // raw IPv6 only
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2, carries the interface index
)

// Proto is an IP protocol number.
type Proto uint8

const (
	ProtoICMP   Proto = 1
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoICMPv6 Proto = 58
)

// TCPFlags are the TCP header flag bits, in header order.
type TCPFlags uint8

const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// FragKind says whether a packet is a whole datagram or which part of one.
type FragKind uint8

const (
	NotFragment   FragKind = iota
	FirstFragment          // offset 0 with more fragments: transport header present
	LaterFragment          // offset > 0: no transport header, ports unknown
)

// SACKBlock is one selective acknowledgement edge pair.
type SACKBlock struct{ Left, Right uint32 }

// TCPOptions holds the options keepstate uses for window tracking and diagnosis.
type TCPOptions struct {
	MSS           uint16
	WScale        uint8 // shift as sent; clamp to 14 when using it
	HasMSS        bool
	HasWScale     bool
	SACKPermitted bool
	HasTimestamps bool
	NumSACK       uint8 // number of valid entries in SACK
	TSVal, TSEcr  uint32
	SACK          [4]SACKBlock
}

// Inner is the IP and transport header quoted inside an ICMP or ICMPv6 error message:
// the packet the error is about, as its sender saw it (so Src is the address of the
// host that received the error).
type Inner struct {
	Valid            bool // the quote held at least an IP header and 8 transport bytes
	Src, Dst         netip.Addr
	Proto            Proto
	SrcPort, DstPort uint16 // TCP/UDP ports
	ID               uint16 // ICMP echo identifier when the quote is an echo
	ICMPType         uint8  // type of a quoted ICMP message
	Seq              uint32 // quoted TCP sequence number
}

// Parsed is the decoded form of one packet. Decode overwrites every field, so one
// value can be reused for every packet of a stream.
type Parsed struct {
	// Link layer.
	Link       LinkType
	VLAN       uint16 // innermost VLAN id (802.1Q C-tag), 0 if untagged
	OuterVLAN  uint16 // outer VLAN id of an 802.1ad (QinQ) pair, 0 if none
	VLANTags   uint8  // number of VLAN tags walked
	IfIndex    int32  // SLL2 interface index; 0 when the link layer carries none
	PacketType uint8  // SLL/SLL2 packet type: 0 to us, 1 broadcast, 2 multicast, 3 other host, 4 outgoing
	EtherType  uint16 // protocol of the link payload (0x0800, 0x86DD, ...)

	// Network layer. Offsets are into the slice given to Decode.
	IPVersion  uint8 // 4 or 6; 0 when there is no IP layer
	Src, Dst   netip.Addr
	Proto      Proto // upper-layer protocol after IPv6 extension headers
	TTL        uint8 // IPv4 TTL or IPv6 hop limit
	TOS        uint8 // IPv4 TOS or IPv6 traffic class
	IPID       uint32
	IPOptions  bool     // IPv4 header longer than 20 bytes
	DontFrag   bool     // IPv4 DF bit
	Frag       FragKind // fragment position
	FragOffset uint16   // fragment offset in bytes
	MoreFrags  bool     // MF bit / M flag
	IPOffset   int      // start of the IP header
	IPLen      int      // IP total length as the header states (header included; but see IPLenFromWire)
	L4Offset   int      // start of the transport header (valid unless LaterFragment)
	ExtHeaders uint8    // number of IPv6 extension headers walked
	// IPLenFromWire: the header's length field was 0, as in a TCP segmentation
	// offload or BIG TCP send captured before the NIC cut it up (tcpdump and
	// Wireshark read it the same way), and IPLen is taken from the frame's length
	// on the wire instead. Only for packets of at least minOffloadLen bytes
	// carrying TCP or UDP (or, over IPv6, a hop-by-hop header), so that link
	// padding is never taken for payload.
	IPLenFromWire bool

	// Transport layer.
	SrcPort, DstPort uint16
	TCPFlags         TCPFlags
	Seq, Ack         uint32
	Window           uint16 // unscaled, as on the wire
	TCPHeaderLen     uint8
	TCPOpts          TCPOptions
	ICMPType         uint8
	ICMPCode         uint8
	ICMPID           uint16 // echo identifier
	ICMPSeq          uint16 // echo sequence
	Inner            Inner  // quoted packet of an ICMP error

	PayloadOffset int // start of the transport payload
	PayloadLen    int // TCP data length, UDP payload length, or IP payload for others

	// Length is the length of the whole slice given to Decode (the captured frame),
	// WireLength the frame's length on the wire as DecodeWire was told (Length for
	// Decode).
	Length, WireLength int
}

// IsICMPError reports whether the packet is an ICMP or ICMPv6 error message, which
// quotes another packet in Inner.
func (p *Parsed) IsICMPError() bool {
	switch p.Proto {
	case ProtoICMP:
		return isICMPErrorType(p.ICMPType, true)
	case ProtoICMPv6:
		return p.ICMPType < 128 // types 1-127 are errors (RFC 4443 section 2.1)
	}
	return false
}

// IsEchoRequest reports whether the packet is an ICMP or ICMPv6 echo request.
func (p *Parsed) IsEchoRequest() bool {
	return (p.Proto == ProtoICMP && p.ICMPType == 8) || (p.Proto == ProtoICMPv6 && p.ICMPType == 128)
}

// IsEchoReply reports whether the packet is an ICMP or ICMPv6 echo reply.
func (p *Parsed) IsEchoReply() bool {
	return (p.Proto == ProtoICMP && p.ICMPType == 0) || (p.Proto == ProtoICMPv6 && p.ICMPType == 129)
}

// String returns the protocol name used in logs: TCP, UDP, ICMP, ICMPv6 or the number.
func (pr Proto) String() string {
	switch pr {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoICMP:
		return "ICMP"
	case ProtoICMPv6:
		return "ICMPv6"
	}
	return protoNumber(pr)
}

func protoNumber(pr Proto) string {
	const digits = "0123456789"
	n := uint8(pr)
	var b [3]byte
	i := len(b)
	for {
		i--
		b[i] = digits[n%10]
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
