package packet

import (
	"encoding/binary"
	"net/netip"
)

// VerifyChecksums checks the IPv4 header checksum and the TCP, UDP, ICMP or ICMPv6
// checksum of b, which p must have been decoded from. It returns nil, or an Error
// whose BadChecksum method is true naming the failing checksum.
//
// Transport checksums cover the whole datagram, so they are skipped (nil) for
// fragments and for captures cut short by their snapshot length; the IPv4 header
// checksum is still checked then. An offloaded send (IPLenFromWire) has nothing
// to check: the NIC fills in its checksums as it cuts it into packets. A zero UDP
// checksum over IPv4 means "none"; over IPv6 it is an error. Unknown protocols have nothing to check. Whatever p holds,
// VerifyChecksums never reads outside b.
func (p *Parsed) VerifyChecksums(b []byte) error {
	ip := p.IPOffset
	if p.IPVersion == 0 || p.IPLenFromWire || ip < 0 || ip >= len(b) {
		return nil
	}
	v4 := p.IPVersion == 4
	if v4 {
		ihl := int(b[ip]&0x0f) * 4
		if ihl < 20 || ip+ihl > len(b) {
			return nil
		}
		if Checksum(b[ip:ip+ihl]) != 0 {
			return ErrBadIPv4Checksum
		}
	}
	if p.Frag != NotFragment || p.Truncated() {
		return nil
	}
	l4, end := p.L4Offset, ip+p.IPLen
	if l4 < ip || l4 > end || end > len(b) {
		return nil
	}
	seg := b[l4:end]
	switch {
	case p.Proto == ProtoTCP:
		if len(seg) < 20 {
			return nil
		}
		if !p.transportSumOK(b, seg) {
			return ErrBadTCPChecksum
		}
	case p.Proto == ProtoUDP:
		if len(seg) < 8 {
			return nil
		}
		ulen := int(binary.BigEndian.Uint16(seg[4:6]))
		if ulen < 8 || ulen > len(seg) {
			return nil
		}
		if binary.BigEndian.Uint16(seg[6:8]) == 0 {
			if v4 {
				return nil
			}
			return ErrMissingUDPChecksum
		}
		if !p.transportSumOK(b, seg[:ulen]) {
			return ErrBadUDPChecksum
		}
	case p.Proto == ProtoICMP && v4:
		if len(seg) < 8 {
			return nil
		}
		if Checksum(seg) != 0 {
			return ErrBadICMPChecksum
		}
	case p.Proto == ProtoICMPv6 && !v4:
		if len(seg) < 8 {
			return nil
		}
		if !p.transportSumOK(b, seg) {
			return ErrBadICMPv6Checksum
		}
	}
	return nil
}

// transportSumOK verifies a checksum that covers a pseudo header and seg. When an
// IPv6 routing header still has segments to visit, the sender summed the final
// destination rather than the one in the IPv6 header (RFC 8200 section 8.1); if that
// address cannot be found the check is skipped rather than failed.
func (p *Parsed) transportSumOK(b, seg []byte) bool {
	dst := p.Dst
	if p.IPVersion == 6 && p.ExtHeaders > 0 && p.IPOffset+40 <= len(b) {
		final, ok := finalDestination(b, p.IPOffset+40, p.L4Offset, b[p.IPOffset+6])
		if !ok {
			return true
		}
		if final.IsValid() {
			dst = final
		}
	}
	sum := pseudoHeaderSum(p.Src, dst, p.Proto, len(seg))
	return checksumFold(checksumAdd(sum, seg)) == 0
}

// finalDestination looks for a routing header in the extension headers between pos
// and l4. It returns the final destination when a routing header with segments left
// names it, an invalid Addr when there is no such header, and ok=false when there is
// one of a type whose final address it cannot tell.
func finalDestination(b []byte, pos, l4 int, next uint8) (netip.Addr, bool) {
	for n := 0; n < MaxIPv6ExtHeaders && pos+8 <= l4 && l4 <= len(b); n++ {
		switch next {
		case ipv6Fragment, ipv6AH, ipv6HopByHop, ipv6DestOptions, ipv6Routing:
		default:
			return netip.Addr{}, true
		}
		size := ipv6ExtLen(next, b[pos+1])
		if pos+size > l4 {
			return netip.Addr{}, true
		}
		if next == ipv6Routing && b[pos+3] > 0 {
			addrs := int(b[pos+1]) / 2 // 16-byte addresses after the first 8 bytes
			switch b[pos+2] {
			case 0, 2: // source route (deprecated), Mobile IPv6 home address: last entry
				if addrs == 0 {
					return netip.Addr{}, false
				}
				at := pos + 8 + 16*(addrs-1)
				return netip.AddrFrom16([16]byte(b[at : at+16])), true
			case 4: // segment routing: the list is stored in reverse, entry 0 is last
				if addrs == 0 {
					return netip.Addr{}, false
				}
				return netip.AddrFrom16([16]byte(b[pos+8 : pos+24])), true
			}
			return netip.Addr{}, false
		}
		next = b[pos]
		pos += size
	}
	return netip.Addr{}, true
}
