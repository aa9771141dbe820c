package packet

import (
	"encoding/binary"
	"net/netip"
)

// decodeTransport parses the transport header at b[l4:]. end is where the IP header
// says the packet ends, which may lie beyond a snapshot-length cut.
func (p *Parsed) decodeTransport(b []byte, l4, end int) error {
	switch {
	case p.Proto == ProtoTCP:
		return p.decodeTCP(b, l4, end)
	case p.Proto == ProtoUDP:
		return p.decodeUDP(b, l4, end)
	case p.Proto == ProtoICMP && p.IPVersion == 4, p.Proto == ProtoICMPv6 && p.IPVersion == 6:
		return p.decodeICMP(b, l4, end)
	}
	// Any other protocol is tracked by addresses and protocol alone.
	p.PayloadOffset, p.PayloadLen = l4, end-l4
	return nil
}

func (p *Parsed) decodeTCP(b []byte, l4, end int) error {
	seg := end - l4 // segment length the IP header states
	if seg < 20 {
		if p.Frag == FirstFragment {
			return ErrTinyFragment
		}
		return ErrTruncatedTCP
	}
	if len(b) < l4+20 {
		return ErrTruncatedTCP
	}
	t := b[l4 : l4+20]
	p.SrcPort = binary.BigEndian.Uint16(t[0:2])
	p.DstPort = binary.BigEndian.Uint16(t[2:4])
	p.Seq = binary.BigEndian.Uint32(t[4:8])
	p.Ack = binary.BigEndian.Uint32(t[8:12])
	doff := int(t[12]>>4) * 4
	p.TCPHeaderLen = uint8(doff)
	p.TCPFlags = TCPFlags(t[13])
	p.Window = binary.BigEndian.Uint16(t[14:16])
	if doff < 20 {
		return ErrBadTCPHeader
	}
	if doff > seg {
		if p.Frag == FirstFragment {
			return ErrTinyFragment
		}
		return ErrBadTCPHeader
	}
	if len(b) < l4+doff {
		return ErrTruncatedTCP
	}
	switch {
	case doff == 32 && binary.BigEndian.Uint32(b[l4+20:l4+24]) == alignedTimestamps:
		// The layout Linux and most stacks send on every segment of a connection
		// that negotiated timestamps: read it without the option walk.
		p.TCPOpts.HasTimestamps = true
		p.TCPOpts.TSVal = binary.BigEndian.Uint32(b[l4+24 : l4+28])
		p.TCPOpts.TSEcr = binary.BigEndian.Uint32(b[l4+28 : l4+32])
	case doff > 20:
		if err := p.TCPOpts.parse(b[l4+20 : l4+doff]); err != nil {
			return err
		}
	}
	p.PayloadOffset, p.PayloadLen = l4+doff, seg-doff
	return nil
}

// alignedTimestamps is NOP, NOP, kind 8, length 10: the timestamp option padded to
// a 4-byte boundary (RFC 7323 appendix A).
const alignedTimestamps = 0x0101080a

// parse reads TCP options. Options keepstate does not use are skipped by their
// length; a known option with the wrong length is ignored, as Linux does, but a
// length that cannot be walked makes the header malformed.
func (o *TCPOptions) parse(opts []byte) error {
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case 0: // end of option list
			return nil
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return ErrBadTCPOption
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return ErrBadTCPOption
		}
		v := opts[i : i+n]
		switch {
		case kind == 2 && n == 4:
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(v[2:4])
		case kind == 3 && n == 3:
			o.HasWScale, o.WScale = true, v[2]
		case kind == 4 && n == 2:
			o.SACKPermitted = true
		case kind == 5 && n >= 10 && (n-2)%8 == 0:
			blocks := v[2:]
			k := 0
			for ; k < len(o.SACK) && len(blocks) >= 8; k++ {
				o.SACK[k] = SACKBlock{binary.BigEndian.Uint32(blocks[0:4]), binary.BigEndian.Uint32(blocks[4:8])}
				blocks = blocks[8:]
			}
			o.NumSACK = uint8(k)
		case kind == 8 && n == 10:
			o.HasTimestamps = true
			o.TSVal = binary.BigEndian.Uint32(v[2:6])
			o.TSEcr = binary.BigEndian.Uint32(v[6:10])
		}
		i += n
	}
	return nil
}

func (p *Parsed) decodeUDP(b []byte, l4, end int) error {
	seg := end - l4
	if seg < 8 {
		if p.Frag == FirstFragment {
			return ErrTinyFragment
		}
		return ErrTruncatedUDP
	}
	if len(b) < l4+8 {
		return ErrTruncatedUDP
	}
	u := b[l4 : l4+8]
	p.SrcPort = binary.BigEndian.Uint16(u[0:2])
	p.DstPort = binary.BigEndian.Uint16(u[2:4])
	ulen := int(binary.BigEndian.Uint16(u[4:6]))
	p.PayloadOffset = l4 + 8
	if ulen == 0 && p.IPLenFromWire {
		// A datagram longer than 64 KiB carries 0 here too (RFC 2675 section 4:
		// a tunnel's BIG TCP send): it fills the IP packet.
		ulen = seg
	}
	if ulen < 8 {
		return ErrBadUDPLength
	}
	if p.Frag == FirstFragment {
		// The UDP length covers the whole datagram, not this fragment.
		p.PayloadLen = seg - 8
		return nil
	}
	// The IP length is the truth: a UDP length beyond it is malformed, one short
	// of it leaves trailing bytes that are not payload (the kernel trims them).
	if ulen > seg {
		return ErrBadUDPLength
	}
	p.PayloadLen = ulen - 8
	return nil
}

func (p *Parsed) decodeICMP(b []byte, l4, end int) error {
	if end-l4 < 8 || len(b) < l4+8 {
		return ErrTruncatedICMP
	}
	m := b[l4 : l4+8]
	p.ICMPType, p.ICMPCode = m[0], m[1]
	p.PayloadOffset, p.PayloadLen = l4+8, end-l4-8
	v4 := p.IPVersion == 4
	if isICMPQuery(m[0], v4) {
		p.ICMPID = binary.BigEndian.Uint16(m[4:6])
		p.ICMPSeq = binary.BigEndian.Uint16(m[6:8])
		return nil
	}
	if isICMPErrorType(m[0], v4) {
		p.Inner.decode(b[l4+8:min(end, len(b))], v4)
	}
	return nil
}

// isICMPQuery reports whether an ICMP type carries an identifier and sequence number
// that pair a request with its reply: echo, and for ICMPv4 also timestamp,
// information and address mask, which Linux conntrack tracks the same way.
func isICMPQuery(typ uint8, v4 bool) bool {
	if v4 {
		return typ == 0 || typ == 8 || (typ >= 13 && typ <= 18)
	}
	return typ == 128 || typ == 129
}

// isICMPErrorType reports whether an ICMP type quotes the packet it is about:
// unreachable, source quench, redirect, time exceeded, parameter problem for ICMPv4;
// unreachable, packet too big, time exceeded, parameter problem for ICMPv6.
func isICMPErrorType(typ uint8, v4 bool) bool {
	if v4 {
		return typ == 3 || typ == 4 || typ == 5 || typ == 11 || typ == 12
	}
	return typ >= 1 && typ <= 4
}

// decode parses the packet quoted by an ICMP error: q holds what was quoted, which is
// normally cut short, so nothing here is an error. Valid is set only when the IP
// header and the first 8 transport bytes are both present. A quoted ICMP error is
// not followed into its own quote: only its type is recorded.
func (in *Inner) decode(q []byte, v4 bool) {
	var t []byte
	if v4 {
		if len(q) < 20 || q[0]>>4 != 4 {
			return
		}
		in.Src = netip.AddrFrom4([4]byte(q[12:16]))
		in.Dst = netip.AddrFrom4([4]byte(q[16:20]))
		in.Proto = Proto(q[9])
		ihl := int(q[0]&0x0f) * 4
		if ihl < 20 || binary.BigEndian.Uint16(q[6:8])&0x1fff != 0 || len(q) < ihl+8 {
			return // bad header, a later fragment (no transport header), or cut short
		}
		t = q[ihl : ihl+8]
	} else {
		if len(q) < 40 || q[0]>>4 != 6 {
			return
		}
		in.Src = netip.AddrFrom16([16]byte(q[8:24]))
		in.Dst = netip.AddrFrom16([16]byte(q[24:40]))
		in.Proto = Proto(q[6])
		// The quote ends where the error message ends, whatever the quoted header
		// says, so the walk is bounded by the quote itself.
		var x ipv6Ext
		err := walkIPv6Ext(&x, q, 40, len(q), q[6])
		if err != nil || (x.fragment && x.fragOffset > 0) || len(q) < x.l4+8 {
			return
		}
		in.Proto = x.proto
		t = q[x.l4 : x.l4+8]
	}
	switch {
	case in.Proto == ProtoTCP:
		in.SrcPort = binary.BigEndian.Uint16(t[0:2])
		in.DstPort = binary.BigEndian.Uint16(t[2:4])
		in.Seq = binary.BigEndian.Uint32(t[4:8])
	case in.Proto == ProtoUDP:
		in.SrcPort = binary.BigEndian.Uint16(t[0:2])
		in.DstPort = binary.BigEndian.Uint16(t[2:4])
	case in.Proto == ProtoICMP && v4, in.Proto == ProtoICMPv6 && !v4:
		in.ICMPType = t[0]
		if isICMPQuery(t[0], v4) {
			in.ID = binary.BigEndian.Uint16(t[4:6])
		}
	}
	in.Valid = true
}
