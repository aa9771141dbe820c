package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// naiveChecksum is RFC 1071 done the slow, obvious way, to check the fast one.
func naiveChecksum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func naivePseudo(src, dst netip.Addr, proto Proto, n int) []byte {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	if src.Is4() {
		b = append(b, 0, byte(proto), byte(n>>8), byte(n))
	} else {
		b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, byte(proto))
	}
	return b
}

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.7")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8:ffff::2")
)

func TestChecksumMatchesNaive(t *testing.T) {
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*131 + n*7 + 0xf0)
		}
		if got, want := Checksum(b), naiveChecksum(b); got != want {
			t.Fatalf("len %d: Checksum = %#04x, naive %#04x", n, got, want)
		}
	}
	// All-ones data must not wrap to a wrong value in the folding.
	ff := bytes.Repeat([]byte{0xff}, 4096)
	if got, want := Checksum(ff), naiveChecksum(ff); got != want {
		t.Fatalf("all ones: Checksum = %#04x, naive %#04x", got, want)
	}
}

func TestAppendTCPv4Exact(t *testing.T) {
	spec := TCPSpec{
		Src: netip.AddrPortFrom(v4a, 40000), Dst: netip.AddrPortFrom(v4b, 443),
		Seq: 0x01020304, Ack: 0, Flags: SYN, Window: 64240, TTL: 63, IPID: 0x1234, DontFrag: true,
		Options: TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true,
			TSVal: 0xaabbccdd, TSEcr: 0, HasWScale: true, WScale: 7},
	}
	got := AppendTCP([]byte{0xee}, spec) // appends after existing bytes
	if got[0] != 0xee {
		t.Fatalf("existing byte overwritten")
	}
	pkt := got[1:]
	want := []byte{
		0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 63, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
		0x9c, 0x40, 0x01, 0xbb, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
		2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, 1, 3, 3, 7,
	}
	// Compare with the checksum fields blanked, then check them independently.
	blank := bytes.Clone(pkt)
	blank[10], blank[11], blank[36], blank[37] = 0, 0, 0, 0
	if !bytes.Equal(blank, want) {
		t.Fatalf("packet\n got % x\nwant % x", blank, want)
	}
	if c := naiveChecksum(pkt[:20]); c != 0 {
		t.Errorf("IPv4 header checksum does not verify: %#04x", c)
	}
	if c := naiveChecksum(naivePseudo(v4a, v4b, ProtoTCP, 40), pkt[20:]); c != 0 {
		t.Errorf("TCP checksum does not verify: %#04x", c)
	}
}

func TestBuildersChecksumsVerify(t *testing.T) {
	payload := []byte("hello, world!") // odd length on purpose
	tcpSACK := TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2, NumSACK: 4,
		SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}
	cases := []struct {
		name    string
		pkt     []byte
		proto   Proto
		wantLen int
	}{
		{"tcp4", AppendTCP(nil, TCPSpec{Src: netip.AddrPortFrom(v4a, 1), Dst: netip.AddrPortFrom(v4b, 2), Flags: ACK | PSH, Payload: payload}), ProtoTCP, 20 + 20 + 13},
		{"tcp6", AppendTCP(nil, TCPSpec{Src: netip.AddrPortFrom(v6a, 1), Dst: netip.AddrPortFrom(v6b, 2), Flags: ACK, Payload: payload}), ProtoTCP, 40 + 20 + 13},
		{"tcp4 sack clipped to 3", AppendTCP(nil, TCPSpec{Src: netip.AddrPortFrom(v4a, 1), Dst: netip.AddrPortFrom(v4b, 2), Flags: ACK, Options: tcpSACK}), ProtoTCP, 20 + 60},
		{"udp4", AppendUDP(nil, UDPSpec{Src: netip.AddrPortFrom(v4a, 53), Dst: netip.AddrPortFrom(v4b, 5353), Payload: payload}), ProtoUDP, 20 + 8 + 13},
		{"udp6", AppendUDP(nil, UDPSpec{Src: netip.AddrPortFrom(v6a, 53), Dst: netip.AddrPortFrom(v6b, 5353), Payload: payload}), ProtoUDP, 40 + 8 + 13},
		{"echo4", AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b, ID: 7, Seq: 1, Payload: payload}), ProtoICMP, 20 + 8 + 13},
		{"echo6 reply", AppendICMPEcho(nil, ICMPEchoSpec{Src: v6a, Dst: v6b, Reply: true, ID: 7, Seq: 1}), ProtoICMPv6, 40 + 8},
		{"error4", AppendICMPError(nil, 3, 3, v4b, v4a, make([]byte, 1000)), ProtoICMP, 576},
		{"error6", AppendICMPError(nil, 1, 4, v6b, v6a, make([]byte, 2000)), ProtoICMPv6, 1280},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.pkt) != c.wantLen {
				t.Fatalf("length %d, want %d", len(c.pkt), c.wantLen)
			}
			var src, dst netip.Addr
			var l4 []byte
			if c.pkt[0]>>4 == 4 {
				if c := naiveChecksum(c.pkt[:20]); c != 0 {
					t.Errorf("IPv4 header checksum does not verify: %#04x", c)
				}
				if tl := int(binary.BigEndian.Uint16(c.pkt[2:])); tl != len(c.pkt) {
					t.Errorf("IPv4 total length %d, want %d", tl, len(c.pkt))
				}
				src, dst, l4 = netip.AddrFrom4([4]byte(c.pkt[12:16])), netip.AddrFrom4([4]byte(c.pkt[16:20])), c.pkt[20:]
			} else {
				if pl := int(binary.BigEndian.Uint16(c.pkt[4:])); pl != len(c.pkt)-40 {
					t.Errorf("IPv6 payload length %d, want %d", pl, len(c.pkt)-40)
				}
				src, dst, l4 = netip.AddrFrom16([16]byte(c.pkt[8:24])), netip.AddrFrom16([16]byte(c.pkt[24:40])), c.pkt[40:]
			}
			var pseudo []byte
			if c.proto != ProtoICMP {
				pseudo = naivePseudo(src, dst, c.proto, len(l4))
			}
			if s := naiveChecksum(pseudo, l4); s != 0 {
				t.Errorf("%v checksum does not verify: %#04x", c.proto, s)
			}
		})
	}
}

func TestBuilderReusesBufferWithoutStaleBytes(t *testing.T) {
	buf := bytes.Repeat([]byte{0xff}, 200)
	a := AppendTCP(buf[:0], TCPSpec{Src: netip.AddrPortFrom(v4a, 1), Dst: netip.AddrPortFrom(v4b, 2), Flags: SYN})
	b := AppendTCP(nil, TCPSpec{Src: netip.AddrPortFrom(v4a, 1), Dst: netip.AddrPortFrom(v4b, 2), Flags: SYN})
	if !bytes.Equal(a, b) {
		t.Fatalf("reused buffer leaked old bytes:\n% x\n% x", a, b)
	}
}

func TestLinkFraming(t *testing.T) {
	ip4 := AppendUDP(nil, UDPSpec{Src: netip.AddrPortFrom(v4a, 1), Dst: netip.AddrPortFrom(v4b, 2)})
	ip6 := AppendUDP(nil, UDPSpec{Src: netip.AddrPortFrom(v6a, 1), Dst: netip.AddrPortFrom(v6b, 2)})
	src := [6]byte{2, 0, 0, 0, 0, 1}
	dst := [6]byte{2, 0, 0, 0, 0, 2}

	eth := AppendEthernet(nil, src, dst, []uint16{100, 200}, ip6)
	wantHdr := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 100, 0x81, 0, 0, 200, 0x86, 0xdd}
	if !bytes.Equal(eth[:22], wantHdr) || !bytes.Equal(eth[22:], ip6) {
		t.Errorf("QinQ frame header % x, want % x", eth[:22], wantHdr)
	}
	sll := AppendSLL(nil, PacketOutgoing, src, ip4)
	wantSLL := []byte{0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0}
	if !bytes.Equal(sll[:16], wantSLL) || !bytes.Equal(sll[16:], ip4) {
		t.Errorf("SLL header % x, want % x", sll[:16], wantSLL)
	}
	sll2 := AppendSLL2(nil, 7, PacketHost, src, ip6)
	wantSLL2 := []byte{0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}
	if !bytes.Equal(sll2[:20], wantSLL2) || !bytes.Equal(sll2[20:], ip6) {
		t.Errorf("SLL2 header % x, want % x", sll2[:20], wantSLL2)
	}
	loop := AppendLoop(nil, ip6)
	if !bytes.Equal(loop[:4], []byte{0, 0, 0, 24}) {
		t.Errorf("loop header % x", loop[:4])
	}
	null := AppendNull(nil, ip4)
	if binary.NativeEndian.Uint32(null) != 2 {
		t.Errorf("null header % x", null[:4])
	}
}
