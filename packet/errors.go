package packet

// Error is a decoding or checksum failure. It is a small integer so that returning
// one as an error never allocates (the runtime boxes single-byte values without
// allocating), which keeps Decode allocation-free on hostile traffic too.
//
// Every Error falls in one of three classes, which map onto the engine's reasons:
// Unsupported (a frame keepstate does not filter, such as ARP), BadChecksum, and
// everything else, which is malformed.
type Error uint8

const (
	_ Error = iota

	// Link layer.
	ErrTruncatedLink   // frame shorter than its link-layer header
	ErrTooManyVLANTags // VLAN tag stack deeper than MaxVLANTags
	ErrUnsupportedLink // link type the decoder does not know
	ErrNotIP           // link payload is not IPv4 or IPv6 (ARP, LLDP, STP...)

	// IPv4.
	ErrTruncatedIPv4 // captured bytes end inside the IPv4 header
	ErrBadIPVersion  // version nibble does not match the link layer, or is not 4 or 6
	ErrBadIPv4Header // IHL below 5, or total length shorter than the header
	ErrTinyFragment  // first fragment too short to hold the transport header (RFC 1858)

	// IPv6.
	ErrTruncatedIPv6   // captured bytes end inside the IPv6 header or its extension headers
	ErrBadIPv6ExtChain // extension chain too long, out of order, or past the payload length

	// Either IP version.
	ErrIPBeyondWire // the IP header's length runs past the packet's length on the wire

	// Transport.
	ErrTruncatedTCP  // captured bytes end inside the TCP header
	ErrBadTCPHeader  // data offset below 5 words or past the end of the segment
	ErrBadTCPOption  // an option's length is below 2 or runs past the header
	ErrTruncatedUDP  // captured bytes end inside the UDP header
	ErrBadUDPLength  // UDP length below 8 or beyond the IP payload
	ErrTruncatedICMP // captured bytes end inside the 8-byte ICMP header

	// Checksums, from VerifyChecksums.
	ErrBadIPv4Checksum
	ErrBadTCPChecksum
	ErrBadUDPChecksum
	ErrMissingUDPChecksum // zero UDP checksum over IPv6, where it is mandatory
	ErrBadICMPChecksum
	ErrBadICMPv6Checksum

	errorCount // keep last
)

var errorText = [errorCount]string{
	ErrTruncatedLink:      "packet: frame shorter than its link-layer header",
	ErrTooManyVLANTags:    "packet: malformed VLAN tag stack (too many tags)",
	ErrUnsupportedLink:    "packet: unsupported link type",
	ErrNotIP:              "packet: unsupported link payload (not IPv4 or IPv6)",
	ErrTruncatedIPv4:      "packet: truncated IPv4 header",
	ErrBadIPVersion:       "packet: bad IP version",
	ErrBadIPv4Header:      "packet: malformed IPv4 header (header or total length)",
	ErrTinyFragment:       "packet: first fragment too short for the transport header",
	ErrTruncatedIPv6:      "packet: truncated IPv6 header or extension header",
	ErrBadIPv6ExtChain:    "packet: malformed IPv6 extension header chain",
	ErrIPBeyondWire:       "packet: IP length beyond the packet on the wire",
	ErrTruncatedTCP:       "packet: truncated TCP header",
	ErrBadTCPHeader:       "packet: malformed TCP header (data offset)",
	ErrBadTCPOption:       "packet: malformed TCP option",
	ErrTruncatedUDP:       "packet: truncated UDP header",
	ErrBadUDPLength:       "packet: malformed UDP length",
	ErrTruncatedICMP:      "packet: truncated ICMP header",
	ErrBadIPv4Checksum:    "packet: bad IPv4 header checksum",
	ErrBadTCPChecksum:     "packet: bad TCP checksum",
	ErrBadUDPChecksum:     "packet: bad UDP checksum",
	ErrMissingUDPChecksum: "packet: missing UDP checksum over IPv6",
	ErrBadICMPChecksum:    "packet: bad ICMP checksum",
	ErrBadICMPv6Checksum:  "packet: bad ICMPv6 checksum",
}

func (e Error) Error() string {
	if e < errorCount && errorText[e] != "" {
		return errorText[e]
	}
	return "packet: unknown error"
}

// Unsupported reports whether the packet is well formed as far as it was read but
// of a kind keepstate does not filter (not IP, or an unknown link type).
func (e Error) Unsupported() bool { return e == ErrUnsupportedLink || e == ErrNotIP }

// BadChecksum reports whether the error comes from VerifyChecksums.
func (e Error) BadChecksum() bool { return e >= ErrBadIPv4Checksum && e < errorCount }

// Malformed reports whether the packet is broken or cut short: neither unsupported
// nor a checksum failure.
func (e Error) Malformed() bool { return e != 0 && !e.Unsupported() && !e.BadChecksum() }
