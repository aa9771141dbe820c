package conntrack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"keepstate/packet"
)

// Key is a connection tuple in the original direction. It holds no pointers (unlike
// netip.Addr) and is comparable with ==, so it can live in pointer-free slabs that the
// garbage collector never scans. IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d),
// which keeps the two families apart without a separate family field. Every field is
// a byte array so that the struct is 37 bytes with no padding.
type Key struct {
	Src, Dst         [16]byte
	SrcPort, DstPort [2]byte // big endian; the echo identifier on both sides for ICMP echo
	Proto            uint8
}

// reverse returns the key as seen from the other direction.
func (k Key) reverse() Key {
	return Key{Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort, Proto: k.Proto}
}

func be16(v uint16) [2]byte     { return [2]byte{byte(v >> 8), byte(v)} }
func fromBE16(b [2]byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// addr converts a stored address back to a netip.Addr, unmapping IPv4.
func addr(a [16]byte) netip.Addr { return netip.AddrFrom16(a).Unmap() }

// isEcho reports whether proto/type is an ICMP or ICMPv6 echo request or reply.
func isEcho(proto packet.Proto, typ uint8) bool {
	switch proto {
	case packet.ProtoICMP:
		return typ == 8 || typ == 0
	case packet.ProtoICMPv6:
		return typ == 128 || typ == 129
	}
	return false
}

// keyOf builds the key of p as sent: p's source is the key's source. ICMP echo uses
// the identifier as both ports so that a reply reverses onto its request.
func keyOf(p *packet.Parsed) Key {
	var k Key
	k.fill(p)
	return k
}

// fill sets k to p's key in place (Track's path: no 37-byte copies).
func (k *Key) fill(p *packet.Parsed) {
	k.Src, k.Dst, k.Proto = p.Src.As16(), p.Dst.As16(), uint8(p.Proto)
	k.SrcPort, k.DstPort = [2]byte{}, [2]byte{}
	switch p.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		k.SrcPort, k.DstPort = be16(p.SrcPort), be16(p.DstPort)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if isEcho(p.Proto, p.ICMPType) {
			k.SrcPort, k.DstPort = be16(p.ICMPID), be16(p.ICMPID)
		}
	}
}

// innerKeyOf builds the key of the packet quoted in an ICMP error, as its sender sent
// it.
func innerKeyOf(in *packet.Inner) Key {
	k := Key{Src: in.Src.As16(), Dst: in.Dst.As16(), Proto: uint8(in.Proto)}
	switch in.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		k.SrcPort, k.DstPort = be16(in.SrcPort), be16(in.DstPort)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if isEcho(in.Proto, in.ICMPType) {
			k.SrcPort, k.DstPort = be16(in.ID), be16(in.ID)
		}
	}
	return k
}

// hashSeed keys the tuple hash. It is random per table so that a remote sender who
// picks ports cannot aim collisions at one index slot.
type hashSeed [4]uint64

// mum is the multiply-mix of wyhash: the two halves of a 128-bit product folded.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func endpointHash(s *hashSeed, a [16]byte, port [2]byte) uint64 {
	lo := binary.LittleEndian.Uint64(a[0:8])
	hi := binary.LittleEndian.Uint64(a[8:16])
	p := uint64(port[0])<<8 | uint64(port[1])
	return mum(lo^s[0], hi^s[1]^p<<32)
}

// hash is direction independent: both endpoints are mixed separately and combined
// with a commutative addition, so a packet and its reply find the same slot without
// ordering the endpoints first.
func (k *Key) hash(s *hashSeed) uint64 {
	e := endpointHash(s, k.Src, k.SrcPort) + endpointHash(s, k.Dst, k.DstPort)
	return mum(e^s[2], s[3]^uint64(k.Proto))
}
