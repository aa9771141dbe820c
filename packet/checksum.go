package packet

import (
	"encoding/binary"
	"net/netip"
)

// checksumAdd adds b to the running ones' complement sum s without folding. The sum
// is kept in 64 bits and folded once at the end: because 2^16 ≡ 1 (mod 0xffff),
// adding 32-bit big-endian words and folding later gives the same result as adding
// 16-bit words, at half the loads. b must start at an even offset of the summed data;
// only the last piece may have odd length.
func checksumAdd(s uint64, b []byte) uint64 {
	for len(b) >= 16 {
		s += uint64(binary.BigEndian.Uint32(b)) +
			uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) +
			uint64(binary.BigEndian.Uint32(b[12:]))
		b = b[16:]
	}
	for len(b) >= 4 {
		s += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// checksumFold folds a running sum to 16 bits and complements it: the value to store
// in a checksum field, or 0 when verifying data that includes its checksum.
func checksumFold(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}

// pseudoHeaderSum is the unfolded sum of the TCP/UDP/ICMPv6 pseudo header. The IPv4
// and IPv6 layouts differ only in field widths, which do not change a ones'
// complement sum: addresses, protocol and upper-layer length.
func pseudoHeaderSum(src, dst netip.Addr, proto Proto, length int) uint64 {
	var s uint64
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = checksumAdd(s, a[:])
		s = checksumAdd(s, b[:])
	} else {
		a, b := src.As16(), dst.As16()
		s = checksumAdd(s, a[:])
		s = checksumAdd(s, b[:])
	}
	return s + uint64(proto) + uint64(length)
}

// Checksum returns the Internet checksum (RFC 1071) of b: the value that makes the
// ones' complement sum of b, with the result stored in it, equal 0xffff.
func Checksum(b []byte) uint16 { return checksumFold(checksumAdd(0, b)) }
