package packet

import (
	"testing"
)

// fuzzLinks are the link types FuzzDecode picks from; the last is unknown.
var fuzzLinks = []LinkType{LinkEthernet, LinkRaw, LinkIPv4, LinkIPv6, LinkLinuxSLL, LinkLinuxSLL2, LinkNull, LinkLoop, 9999}

func fuzzLinkIndex(l LinkType) uint8 {
	for i, x := range fuzzLinks {
		if x == l {
			return uint8(i)
		}
	}
	return uint8(len(fuzzLinks) - 1)
}

func FuzzDecode(f *testing.F) {
	for _, c := range allGoodCases() {
		f.Add(c.frame, fuzzLinkIndex(c.link))
	}
	for _, c := range errorCases() {
		f.Add(c.frame, fuzzLinkIndex(c.link))
	}
	for _, c := range benchFrames() {
		f.Add(c.frame, fuzzLinkIndex(c.link))
	}
	f.Fuzz(func(t *testing.T, b []byte, li uint8) {
		link := fuzzLinks[int(li)%len(fuzzLinks)]
		b = b[:len(b):len(b)] // reading past len must fail loudly, not find spare capacity

		var p Parsed
		err := p.Decode(b, link)
		checkDecodeInvariants(t, b, link, &p, err)

		// Decoding into a used value gives the same result: every field is reset.
		dirty := Parsed{VLAN: 1, IfIndex: 2, Inner: Inner{Valid: true}, TCPOpts: TCPOptions{NumSACK: 3}, PayloadLen: 7}
		err2 := dirty.Decode(b, link)
		if err2 != err || dirty != p {
			t.Fatalf("Decode not deterministic or leaves stale fields:\n%+v %v\n%+v %v", p, err, dirty, err2)
		}

		// The same frame as if the capture had cut it: a wire length taken from
		// the input.
		wire := len(b)
		if len(b) > 0 {
			wire += int(b[len(b)-1]) * 257
		}
		var w Parsed
		werr := w.DecodeWire(b, link, wire)
		checkDecodeInvariants(t, b, link, &w, werr)
		if w.WireLength != wire {
			t.Fatalf("WireLength %d, told %d", w.WireLength, wire)
		}
		if werr == nil && w.IPLenFromWire && w.IPOffset+w.IPLen != wire {
			t.Fatalf("length from capture: IP packet [%d, +%d) does not end at the wire length %d", w.IPOffset, w.IPLen, wire)
		}

		cerr := p.VerifyChecksums(b)
		if cerr != nil {
			if e, ok := cerr.(Error); !ok || !e.BadChecksum() {
				t.Fatalf("VerifyChecksums returned %v, not a checksum Error", cerr)
			}
		}
		_ = p.Payload(b)
	})
}

func checkDecodeInvariants(t *testing.T, b []byte, link LinkType, p *Parsed, err error) {
	t.Helper()
	if p.Length != len(b) || p.Link != link {
		t.Fatalf("Length %d Link %d for a %d-byte frame of link %d", p.Length, p.Link, len(b), link)
	}
	if p.VLANTags > MaxVLANTags || (p.VLANTags < 2 && p.OuterVLAN != 0) || p.VLAN > 0x0fff || p.OuterVLAN > 0x0fff {
		t.Fatalf("VLAN fields out of range: tags %d vlan %d outer %d", p.VLANTags, p.VLAN, p.OuterVLAN)
	}
	if p.TCPOpts.NumSACK > 4 || p.ExtHeaders > MaxIPv6ExtHeaders {
		t.Fatalf("counts out of range: SACK %d ext %d", p.TCPOpts.NumSACK, p.ExtHeaders)
	}
	if err != nil {
		e, ok := err.(Error)
		if !ok || e == 0 || e >= errorCount || e.BadChecksum() {
			t.Fatalf("Decode returned %#v, want a decoding Error", err)
		}
		return
	}

	// Success: an IP packet whose headers all lie inside b.
	hdr := 20
	switch {
	case p.IPVersion == 4 && p.Src.Is4() && p.Dst.Is4():
	case p.IPVersion == 6 && p.Src.Is6() && p.Dst.Is6():
		hdr = 40
	default:
		t.Fatalf("success with IP version %d, addresses %v %v", p.IPVersion, p.Src, p.Dst)
	}
	ipEnd := p.IPOffset + p.IPLen
	if p.IPOffset < 0 || p.IPOffset+hdr > len(b) || p.IPLen < hdr {
		t.Fatalf("IP header outside the frame: offset %d len %d frame %d", p.IPOffset, p.IPLen, len(b))
	}
	if p.L4Offset < p.IPOffset+hdr || p.L4Offset > ipEnd || p.L4Offset > len(b) {
		t.Fatalf("L4Offset %d outside [%d, min(%d, %d)]", p.L4Offset, p.IPOffset+hdr, ipEnd, len(b))
	}
	if p.PayloadLen < 0 || p.PayloadOffset < p.L4Offset || p.PayloadOffset+p.PayloadLen > ipEnd {
		t.Fatalf("payload [%d, +%d) outside the IP packet [%d, %d)", p.PayloadOffset, p.PayloadLen, p.L4Offset, ipEnd)
	}
	if p.Truncated() != (ipEnd > len(b)) {
		t.Fatalf("Truncated() = %v with IP end %d and frame %d", p.Truncated(), ipEnd, len(b))
	}
	if !p.Truncated() && p.PayloadOffset+p.PayloadLen > len(b) {
		t.Fatalf("payload past the frame without truncation")
	}
	if pl := p.Payload(b); len(pl) > p.PayloadLen || (!p.Truncated() && len(pl) != p.PayloadLen) {
		t.Fatalf("Payload() %d bytes, PayloadLen %d", len(pl), p.PayloadLen)
	}
	if p.Frag == LaterFragment {
		if p.SrcPort != 0 || p.DstPort != 0 || p.TCPFlags != 0 {
			t.Fatalf("later fragment with transport fields %+v", p)
		}
		return
	}
	// The transport header itself was captured.
	var l4Len int
	switch {
	case p.Proto == ProtoTCP:
		l4Len = int(p.TCPHeaderLen)
		if l4Len < 20 || p.PayloadOffset != p.L4Offset+l4Len {
			t.Fatalf("TCP header length %d, payload at %d, L4 at %d", l4Len, p.PayloadOffset, p.L4Offset)
		}
	case p.Proto == ProtoUDP, p.Proto == ProtoICMP && p.IPVersion == 4, p.Proto == ProtoICMPv6 && p.IPVersion == 6:
		l4Len = 8
	}
	if p.L4Offset+l4Len > len(b) {
		t.Fatalf("transport header [%d, +%d) past the frame (%d)", p.L4Offset, l4Len, len(b))
	}
	if p.Inner.Valid {
		if !p.IsICMPError() || p.Inner.Src.Is4() != (p.IPVersion == 4) || !p.Inner.Dst.IsValid() {
			t.Fatalf("inner quote inconsistent with outer packet: %+v", p)
		}
	}
}
