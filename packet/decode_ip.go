package packet

import (
	"encoding/binary"
	"net/netip"
)

// MaxIPv6ExtHeaders bounds the walk over IPv6 extension headers. Legitimate packets
// carry a handful; a longer chain is an evasion attempt or garbage.
const MaxIPv6ExtHeaders = 16

// IPv6 extension header numbers the decoder walks.
const (
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AH          = 51
	ipv6NoNext      = 59
	ipv6DestOptions = 60
)

// minOffloadLen is the least IP packet length for which a length field of 0 is
// read as an offloaded send. Such a send is larger than a path MTU, which is at
// least this (RFC 791's 576); a shorter frame with a zero length is a broken
// packet, perhaps padded to the Ethernet minimum, whose padding must not pass for
// payload.
const minOffloadLen = 576

// decodeIPv4 parses the IPv4 header at b[off:] and then the transport header.
func (p *Parsed) decodeIPv4(b []byte, off int) error {
	p.IPOffset = off
	if len(b) < off+20 {
		return ErrTruncatedIPv4
	}
	h := b[off : off+20]
	if h[0]>>4 != 4 {
		return ErrBadIPVersion
	}
	p.IPVersion = 4
	p.TOS = h[1]
	frag := binary.BigEndian.Uint16(h[6:8])
	total := int(binary.BigEndian.Uint16(h[2:4]))
	if wire := p.WireLength - off; total == 0 && frag&0x3fff == 0 && wire >= minOffloadLen &&
		(h[9] == uint8(ProtoTCP) || h[9] == uint8(ProtoUDP)) {
		// A segmentation offload send, captured before the NIC split it: the
		// packet is as long as the frame (see IPLenFromWire).
		total, p.IPLenFromWire = wire, true
	}
	p.IPLen = total
	p.IPID = uint32(binary.BigEndian.Uint16(h[4:6]))
	p.DontFrag = frag&0x4000 != 0
	p.MoreFrags = frag&0x2000 != 0
	p.FragOffset = (frag & 0x1fff) * 8
	p.TTL = h[8]
	p.Proto = Proto(h[9])
	p.Src = netip.AddrFrom4([4]byte(h[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(h[16:20]))

	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || total < ihl {
		return ErrBadIPv4Header
	}
	p.IPOptions = ihl > 20
	if len(b) < off+ihl {
		return ErrTruncatedIPv4
	}
	l4, end := off+ihl, off+total
	p.L4Offset = l4
	switch {
	case p.FragOffset > 0:
		p.Frag = LaterFragment
		p.PayloadOffset, p.PayloadLen = l4, end-l4
		return nil
	case p.MoreFrags:
		p.Frag = FirstFragment
	}
	return p.decodeTransport(b, l4, end)
}

// decodeIPv6 parses the IPv6 header at b[off:], its extension headers, and then the
// transport header.
func (p *Parsed) decodeIPv6(b []byte, off int) error {
	p.IPOffset = off
	if len(b) < off+40 {
		return ErrTruncatedIPv6
	}
	h := b[off : off+40]
	if h[0]>>4 != 6 {
		return ErrBadIPVersion
	}
	p.IPVersion = 6
	p.TOS = h[0]<<4 | h[1]>>4
	plen := int(binary.BigEndian.Uint16(h[4:6]))
	if plen == 0 && p.WireLength-off >= minOffloadLen &&
		(h[6] == uint8(ProtoTCP) || h[6] == uint8(ProtoUDP) || h[6] == ipv6HopByHop) {
		// A BIG TCP send (alone or in a UDP tunnel), or a jumbogram (RFC 2675:
		// its length is in a hop-by-hop option): as for IPv4, the packet is as
		// long as the frame. Only after headers that cannot be empty: any other
		// may legitimately end at the IPv6 header, followed by link padding.
		plen, p.IPLenFromWire = p.WireLength-off-40, true
	}
	p.IPLen = 40 + plen
	p.Proto = Proto(h[6])
	p.TTL = h[7]
	p.Src = netip.AddrFrom16([16]byte(h[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(h[24:40]))

	end := off + 40 + plen
	l4 := off + 40
	if isIPv6ExtHeader(h[6]) { // most packets carry none: skip the walk
		var x ipv6Ext
		err := walkIPv6Ext(&x, b, l4, end, h[6])
		p.ExtHeaders = x.count
		if err != nil {
			return err
		}
		p.Proto = x.proto
		l4 = x.l4
		if x.fragment {
			p.IPID = x.id
			p.FragOffset = x.fragOffset
			p.MoreFrags = x.more
			switch {
			case x.fragOffset > 0:
				p.Frag = LaterFragment
				p.L4Offset = l4
				p.PayloadOffset, p.PayloadLen = l4, end-l4
				return nil
			case x.more:
				p.Frag = FirstFragment
			}
			// Offset 0 without M is an atomic fragment (RFC 6946): a whole datagram.
		}
	}
	p.L4Offset = l4
	return p.decodeTransport(b, l4, end)
}

// isIPv6ExtHeader reports whether next names an extension header the decoder walks.
func isIPv6ExtHeader(next uint8) bool {
	switch next {
	case ipv6HopByHop, ipv6Routing, ipv6Fragment, ipv6AH, ipv6DestOptions:
		return true
	}
	return false
}

// ipv6Ext is what walking an extension header chain found.
type ipv6Ext struct {
	proto      Proto // first header that is not an extension header (59: none)
	l4         int   // its offset
	count      uint8 // extension headers walked
	fragment   bool  // a fragment header was seen
	more       bool  // its M flag
	fragOffset uint16
	id         uint32
}

// walkIPv6Ext follows the extension header chain that starts at b[pos] with header
// type next. end is where the IPv6 header says the packet ends; the captured bytes
// may stop earlier. A chain that needs bytes past end is malformed, one that only
// needs bytes past the capture is truncated. The walk stops after a fragment header
// with a non-zero offset: what follows is the middle of a datagram.
func walkIPv6Ext(x *ipv6Ext, b []byte, pos, end int, next uint8) error {
	for {
		var n int
		if !isIPv6ExtHeader(next) {
			x.proto, x.l4 = Proto(next), pos
			return nil
		}
		if (next == ipv6HopByHop && x.count > 0) || x.count == MaxIPv6ExtHeaders {
			return ErrBadIPv6ExtChain
		}
		if pos+2 > end {
			return ErrBadIPv6ExtChain
		}
		if pos+2 > len(b) {
			return ErrTruncatedIPv6
		}
		n = ipv6ExtLen(next, b[pos+1])
		if pos+n > end {
			return ErrBadIPv6ExtChain
		}
		if pos+n > len(b) {
			return ErrTruncatedIPv6
		}
		x.count++
		if next == ipv6Fragment {
			fo := binary.BigEndian.Uint16(b[pos+2 : pos+4])
			x.fragment = true
			x.fragOffset = fo & 0xfff8
			x.more = fo&1 != 0
			x.id = binary.BigEndian.Uint32(b[pos+4 : pos+8])
			if x.fragOffset > 0 {
				x.proto, x.l4 = Proto(b[pos]), pos+n
				return nil
			}
		}
		next = b[pos]
		pos += n
	}
}

// ipv6ExtLen is the length in bytes of an IPv6 extension header of type next whose
// length field is hdrLen.
func ipv6ExtLen(next, hdrLen uint8) int {
	switch next {
	case ipv6Fragment:
		return 8
	case ipv6AH:
		return (int(hdrLen) + 2) * 4 // AH counts 4-byte words minus 2 (RFC 4302)
	}
	return (int(hdrLen) + 1) * 8 // 8-byte units not counting the first
}
