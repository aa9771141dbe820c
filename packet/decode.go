package packet

import (
	"encoding/binary"
	"math/bits"
)

// MaxVLANTags bounds the walk over stacked VLAN tags; real networks use one or two.
const MaxVLANTags = 8

// Decode parses the frame b, captured on a link of type link, into p. It resets p
// first, never allocates and never reads outside b. On error p keeps every header
// decoded before the problem; the error is an Error.
//
// A capture cut short by its snapshot length is not an error as long as the headers
// are present: IPLen keeps the length the IP header states (or, for an offloaded
// send whose header states none, the wire length: see IPLenFromWire) and
// Truncated reports the cut. Bytes after the IP packet (Ethernet padding) are
// ignored.
//
// Decode takes b for the whole frame or for one cut short, it cannot tell;
// DecodeWire is Decode for a frame whose length on the wire is known.
func (p *Parsed) Decode(b []byte, link LinkType) error {
	return p.DecodeWire(b, link, 0)
}

// DecodeWire is Decode for frame b, captured on link, that was wireLen bytes long on
// the wire (a capture record's original length; NFQUEUE's NFQA_CAP_LEN). A wireLen
// below len(b) counts as len(b); 0 (or less) means unknown, as for Decode.
//
// The wire length matters for two kinds of packet. One whose IP header gives no
// length (see IPLenFromWire) is as long as the wire length says, and Truncated
// reports the cut. And one whose IP header gives a length longer than the packet
// was on the wire is malformed (ErrIPBeyondWire), as Linux's IP layer finds it: a
// snapshot length cuts the capture, never the packet on the wire. Without a wire
// length such a packet counts as cut by the capture.
func (p *Parsed) DecodeWire(b []byte, link LinkType, wireLen int) error {
	*p = Parsed{Link: link, Length: len(b), WireLength: max(wireLen, len(b))}
	off, err := p.decodeLink(b, link)
	if err != nil {
		return err
	}
	switch p.EtherType {
	case EtherTypeIPv4:
		err = p.decodeIPv4(b, off)
	case EtherTypeIPv6:
		err = p.decodeIPv6(b, off)
	default:
		return ErrNotIP
	}
	if err == nil && wireLen > 0 && p.IPOffset+p.IPLen > p.WireLength {
		return ErrIPBeyondWire
	}
	return err
}

// Truncated reports whether the captured frame ends before the end of the IP packet
// its header announces (a snapshot-length cut). Payload bytes past the capture are
// then missing, and checksums cannot be verified.
func (p *Parsed) Truncated() bool {
	return p.IPVersion != 0 && p.IPOffset+p.IPLen > p.Length
}

// Payload returns the captured part of the transport payload of b, the frame p was
// decoded from: PayloadLen bytes unless the capture was cut short.
func (p *Parsed) Payload(b []byte) []byte {
	start, end := p.PayloadOffset, p.PayloadOffset+p.PayloadLen
	if start < 0 || start > len(b) || end < start {
		return nil
	}
	return b[start:min(end, len(b))]
}

// decodeLink parses the link-layer header, sets EtherType and the link fields, and
// returns the offset of the link payload.
func (p *Parsed) decodeLink(b []byte, link LinkType) (int, error) {
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			return 0, ErrTruncatedLink
		}
		return p.walkVLANTags(b, 14, binary.BigEndian.Uint16(b[12:14]))
	case LinkRaw, LinkIPv4, LinkIPv6:
		if len(b) == 0 {
			if link == LinkIPv6 {
				return 0, ErrTruncatedIPv6
			}
			return 0, ErrTruncatedIPv4
		}
		switch v := b[0] >> 4; {
		case v == 4 && link != LinkIPv6:
			p.EtherType = EtherTypeIPv4
		case v == 6 && link != LinkIPv4:
			p.EtherType = EtherTypeIPv6
		default:
			return 0, ErrBadIPVersion
		}
		return 0, nil
	case LinkLinuxSLL:
		// packet type, ARPHRD type, address length, 8 address bytes, protocol.
		if len(b) < 16 {
			return 0, ErrTruncatedLink
		}
		p.PacketType = b[1]
		return p.walkVLANTags(b, 16, binary.BigEndian.Uint16(b[14:16]))
	case LinkLinuxSLL2:
		// protocol, reserved, interface index, ARPHRD type, packet type, address
		// length, 8 address bytes.
		if len(b) < 20 {
			return 0, ErrTruncatedLink
		}
		p.IfIndex = int32(binary.BigEndian.Uint32(b[4:8]))
		p.PacketType = b[10]
		return p.walkVLANTags(b, 20, binary.BigEndian.Uint16(b[0:2]))
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return 0, ErrTruncatedLink
		}
		af := binary.BigEndian.Uint32(b[0:4])
		if link == LinkNull && af&0xffff == 0 {
			// Host byte order of the capturing machine: a little-endian writer
			// puts the family in the high half when read big-endian.
			af = bits.ReverseBytes32(af)
		}
		switch af {
		case afInet:
			p.EtherType = EtherTypeIPv4
		case afInet6BSD, afInet6FreeBSD, afInet6Darwin:
			p.EtherType = EtherTypeIPv6
		default:
			return 4, ErrNotIP
		}
		return 4, nil
	}
	return 0, ErrUnsupportedLink
}

// walkVLANTags starts with the EtherType et read just before offset off, and while
// it names a VLAN tag, reads the tag at off and the EtherType after it.
func (p *Parsed) walkVLANTags(b []byte, off int, et uint16) (int, error) {
	for et == EtherTypeVLAN || et == EtherTypeQinQ || et == EtherTypeQinQ2 {
		if p.VLANTags == MaxVLANTags {
			p.EtherType = et
			return off, ErrTooManyVLANTags
		}
		if len(b) < off+4 {
			p.EtherType = et
			return off, ErrTruncatedLink
		}
		id := binary.BigEndian.Uint16(b[off:off+2]) & 0x0fff
		if p.VLANTags == 1 {
			p.OuterVLAN = p.VLAN // a second tag: the first one is the outer
		}
		p.VLAN = id
		p.VLANTags++
		et = binary.BigEndian.Uint16(b[off+2 : off+4])
		off += 4
	}
	p.EtherType = et
	return off, nil
}
