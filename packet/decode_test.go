package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// decodeCase is a frame and the exact Parsed that Decode must produce for it.
type decodeCase struct {
	name  string
	frame []byte
	link  LinkType
	want  Parsed
}

// The want* functions give the Parsed of the test packets above (helpers_test.go)
// at IP offset off of a frame of frameLen bytes; cases override what differs.

func wantTCP4(link LinkType, off, frameLen int, flags TCPFlags, hdrLen, payload int) Parsed {
	return Parsed{
		Link: link, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: ProtoTCP,
		TTL: 64, IPID: 77, DontFrag: true, IPOffset: off, IPLen: 20 + hdrLen + payload, L4Offset: off + 20,
		SrcPort: 40000, DstPort: 80, TCPFlags: flags, Seq: 1000, Ack: 2000, Window: 512,
		TCPHeaderLen: uint8(hdrLen), PayloadOffset: off + 20 + hdrLen, PayloadLen: payload, Length: frameLen,
	}
}

func wantTCP6(link LinkType, off, frameLen int, flags TCPFlags, hdrLen, payload int) Parsed {
	return Parsed{
		Link: link, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6a, Dst: v6b, Proto: ProtoTCP,
		TTL: 5, IPOffset: off, IPLen: 40 + hdrLen + payload, L4Offset: off + 40,
		SrcPort: 40000, DstPort: 443, TCPFlags: flags, Seq: 1000, Ack: 2000, Window: 512,
		TCPHeaderLen: uint8(hdrLen), PayloadOffset: off + 40 + hdrLen, PayloadLen: payload, Length: frameLen,
	}
}

func wantUDP4(link LinkType, off, frameLen, payload int) Parsed {
	return Parsed{
		Link: link, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: ProtoUDP,
		TTL: 64, IPOffset: off, IPLen: 28 + payload, L4Offset: off + 20, SrcPort: 5000, DstPort: 53,
		PayloadOffset: off + 28, PayloadLen: payload, Length: frameLen,
	}
}

func wantUDP6(link LinkType, off, frameLen, payload int) Parsed {
	return Parsed{
		Link: link, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6a, Dst: v6b, Proto: ProtoUDP,
		TTL: 64, IPOffset: off, IPLen: 48 + payload, L4Offset: off + 40, SrcPort: 5000, DstPort: 53,
		PayloadOffset: off + 48, PayloadLen: payload, Length: frameLen,
	}
}

func with(p Parsed, f func(*Parsed)) Parsed { f(&p); return p }

func linkCases() []decodeCase {
	t4 := tcp4(ACK|PSH, []byte("abc"))
	u6 := udp6([]byte("hello"))
	syn := AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Seq: 1000, Ack: 2000, Flags: SYN, Window: 512, IPID: 77, DontFrag: true,
		Options: TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 11, TSEcr: 0, HasWScale: true, WScale: 7}})

	tagged3 := eth([]uint16{1, 2, 3}, t4)
	binary.BigEndian.PutUint16(tagged3[12:], EtherTypeQinQ2)

	sll2VLAN := slices.Concat(AppendSLL2(nil, 9, PacketOtherHost, macA, nil), []byte{0, 42, 0x08, 0}, t4)
	binary.BigEndian.PutUint16(sll2VLAN[0:], EtherTypeVLAN)

	nullBE := slices.Concat([]byte{0, 0, 0, 2}, t4)
	nullLE28 := slices.Concat([]byte{28, 0, 0, 0}, u6)
	nullLE30 := slices.Concat([]byte{30, 0, 0, 0}, u6)

	return []decodeCase{
		{"ethernet tcp4 syn options", eth(nil, syn), LinkEthernet, with(wantTCP4(LinkEthernet, 14, 14+60, SYN, 40, 0), func(p *Parsed) {
			p.TCPOpts = TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 11, HasWScale: true, WScale: 7}
		})},
		{"ethernet vlan udp6", eth([]uint16{100}, u6), LinkEthernet, with(wantUDP6(LinkEthernet, 18, 18+53, 5), func(p *Parsed) {
			p.VLAN, p.VLANTags = 100, 1
		})},
		{"ethernet qinq tcp4", eth([]uint16{10, 20}, t4), LinkEthernet, with(wantTCP4(LinkEthernet, 22, 22+43, ACK|PSH, 20, 3), func(p *Parsed) {
			p.VLAN, p.OuterVLAN, p.VLANTags = 20, 10, 2
		})},
		{"ethernet three tags 0x9100 outer", tagged3, LinkEthernet, with(wantTCP4(LinkEthernet, 26, 26+43, ACK|PSH, 20, 3), func(p *Parsed) {
			p.VLAN, p.OuterVLAN, p.VLANTags = 3, 1, 3
		})},
		{"sll outgoing tcp4", AppendSLL(nil, PacketOutgoing, macA, t4), LinkLinuxSLL, with(wantTCP4(LinkLinuxSLL, 16, 16+43, ACK|PSH, 20, 3), func(p *Parsed) {
			p.PacketType = PacketOutgoing
		})},
		{"sll2 ifindex udp6", AppendSLL2(nil, 7, PacketHost, macA, u6), LinkLinuxSLL2, with(wantUDP6(LinkLinuxSLL2, 20, 20+53, 5), func(p *Parsed) {
			p.IfIndex = 7
		})},
		{"sll2 vlan tcp4", sll2VLAN, LinkLinuxSLL2, with(wantTCP4(LinkLinuxSLL2, 24, 24+43, ACK|PSH, 20, 3), func(p *Parsed) {
			p.IfIndex, p.PacketType, p.VLAN, p.VLANTags = 9, PacketOtherHost, 42, 1
		})},
		{"null host order tcp4", AppendNull(nil, t4), LinkNull, wantTCP4(LinkNull, 4, 4+43, ACK|PSH, 20, 3)},
		{"null other byte order tcp4", nullBE, LinkNull, wantTCP4(LinkNull, 4, 4+43, ACK|PSH, 20, 3)},
		{"null af 28 udp6", nullLE28, LinkNull, wantUDP6(LinkNull, 4, 4+53, 5)},
		{"null af 30 udp6", nullLE30, LinkNull, wantUDP6(LinkNull, 4, 4+53, 5)},
		{"loop udp6", AppendLoop(nil, u6), LinkLoop, wantUDP6(LinkLoop, 4, 4+53, 5)},
		{"raw tcp4", t4, LinkRaw, wantTCP4(LinkRaw, 0, 43, ACK|PSH, 20, 3)},
		{"raw udp6", u6, LinkRaw, wantUDP6(LinkRaw, 0, 53, 5)},
		{"ipv4 link", t4, LinkIPv4, wantTCP4(LinkIPv4, 0, 43, ACK|PSH, 20, 3)},
		{"ipv6 link", u6, LinkIPv6, wantUDP6(LinkIPv6, 0, 53, 5)},
	}
}

func ipCases() []decodeCase {
	big := bytes.Repeat([]byte{0xab}, 100)
	sends := bytes.Repeat([]byte{0xcd}, 3000) // an offloaded send: more than a segment
	padded := padTo60(eth(nil, udp4([]byte{1, 2})))
	snapped := eth(nil, tcp4(ACK, big))[:14+40+10]

	u4big := udp4(big)
	hbhDestRouting := withIPv6Ext(tcp6(ACK, nil),
		ext6{typ: ipv6HopByHop, size: 8, body: []byte{1, 4, 0, 0, 0, 0}}, // PadN
		ext6{typ: ipv6DestOptions, size: 16},
		ext6{typ: ipv6Routing, size: 24, body: []byte{2, 0}}) // type 2, segments left 0
	frag6First := withIPv6Ext(udp6(big), ext6{typ: ipv6Fragment, size: 8, body: fragBody(0, true, 0xdeadbeef)})
	frag6Later := withIPv6Ext(udp6(big), ext6{typ: ipv6Fragment, size: 8, body: fragBody(1232, false, 7)})
	frag6Atomic := withIPv6Ext(udp6(big), ext6{typ: ipv6Fragment, size: 8, body: fragBody(0, false, 9)})
	ah6 := withIPv6Ext(tcp6(ACK, nil), ext6{typ: ipv6AH, size: 24})

	return []decodeCase{
		{"ipv4 options", withIPv4Options(tcp4(ACK, nil), []byte{1, 1, 1, 0}), LinkRaw, with(wantTCP4(LinkRaw, 0, 44, ACK, 20, 0), func(p *Parsed) {
			p.IPOptions, p.IPLen, p.L4Offset, p.PayloadOffset = true, 44, 24, 44
		})},
		{"ethernet padding", padded, LinkEthernet, wantUDP4(LinkEthernet, 14, 60, 2)},
		{"snaplen cut inside payload", snapped, LinkEthernet, wantTCP4(LinkEthernet, 14, 64, ACK, 20, 100)},
		{"udp shorter than ip payload", fixIPv4(append(udp4([]byte{1}), 0, 0, 0)), LinkRaw, with(wantUDP4(LinkRaw, 0, 32, 1), func(p *Parsed) {
			p.IPLen = 32
		})},
		{"ipv4 first fragment", fragment4(u4big, 0, true, 48), LinkRaw, with(wantUDP4(LinkRaw, 0, 68, 40), func(p *Parsed) {
			p.Frag, p.MoreFrags = FirstFragment, true
		})},
		{"ipv4 later fragment", fragment4(u4big, 48, false, 60), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: ProtoUDP, TTL: 64,
			Frag: LaterFragment, FragOffset: 48, IPLen: 80, L4Offset: 20, PayloadOffset: 20, PayloadLen: 60, Length: 80,
		}},
		{"ipv4 middle fragment", fragment4(u4big, 8, true, 16), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: ProtoUDP, TTL: 64,
			Frag: LaterFragment, FragOffset: 8, MoreFrags: true, IPLen: 36, L4Offset: 20, PayloadOffset: 20, PayloadLen: 16, Length: 36,
		}},
		{"ipv6 hop-by-hop dest routing", hbhDestRouting, LinkRaw, with(wantTCP6(LinkRaw, 0, 40+48+20, ACK, 20, 0), func(p *Parsed) {
			p.ExtHeaders, p.IPLen, p.L4Offset, p.PayloadOffset = 3, 108, 88, 108
		})},
		{"ipv6 first fragment", frag6First, LinkRaw, with(wantUDP6(LinkRaw, 0, 156, 100), func(p *Parsed) {
			p.ExtHeaders, p.IPLen, p.L4Offset, p.PayloadOffset = 1, 156, 48, 56
			p.Frag, p.MoreFrags, p.IPID = FirstFragment, true, 0xdeadbeef
		})},
		{"ipv6 later fragment", frag6Later, LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6a, Dst: v6b, Proto: ProtoUDP, TTL: 64,
			ExtHeaders: 1, Frag: LaterFragment, FragOffset: 1232, IPID: 7, IPLen: 156, L4Offset: 48,
			PayloadOffset: 48, PayloadLen: 108, Length: 156,
		}},
		{"ipv6 atomic fragment", frag6Atomic, LinkRaw, with(wantUDP6(LinkRaw, 0, 156, 100), func(p *Parsed) {
			p.ExtHeaders, p.IPLen, p.L4Offset, p.PayloadOffset, p.IPID = 1, 156, 48, 56, 9
		})},
		{"ipv6 ah", ah6, LinkRaw, with(wantTCP6(LinkRaw, 0, 84, ACK, 20, 0), func(p *Parsed) {
			p.ExtHeaders, p.IPLen, p.L4Offset, p.PayloadOffset = 1, 84, 64, 84
		})},
		{"ipv6 no next header", AppendIP(nil, IPSpec{Src: v6a, Dst: v6b, Proto: ipv6NoNext}, []byte{1, 2, 3, 4}), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6a, Dst: v6b, Proto: ipv6NoNext, TTL: 64,
			IPLen: 44, L4Offset: 40, PayloadOffset: 40, PayloadLen: 4, Length: 44,
		}},
		// A segmentation offload send captured before the NIC split it: the IP
		// length field is 0 and the packet is as long as the capture.
		{"ipv4 tso total length 0", eth(nil, setIPLen(tcp4(ACK|PSH, sends), 0)), LinkEthernet, with(wantTCP4(LinkEthernet, 14, 14+40+len(sends), ACK|PSH, 20, len(sends)), func(p *Parsed) {
			p.IPLenFromWire = true
		})},
		{"ipv6 big tcp payload length 0", eth(nil, setIPLen(tcp6(ACK|PSH, sends), 0)), LinkEthernet, with(wantTCP6(LinkEthernet, 14, 14+60+len(sends), ACK|PSH, 20, len(sends)), func(p *Parsed) {
			p.IPLenFromWire = true
		})},
		{"ipv4 tso udp length 0", eth(nil, setIPLen(setUDPLen(udp4(sends), 0), 0)), LinkEthernet, with(wantUDP4(LinkEthernet, 14, 14+28+len(sends), len(sends)), func(p *Parsed) {
			p.IPLenFromWire = true
		})},
		{"ipv6 big tcp in a udp tunnel", eth(nil, setIPLen(setUDPLen(udp6(sends), 0), 0)), LinkEthernet, with(wantUDP6(LinkEthernet, 14, 14+48+len(sends), len(sends)), func(p *Parsed) {
			p.IPLenFromWire = true
		})},
		// An empty IPv6 payload is not taken for a BIG TCP send: the link padding
		// after it stays padding.
		{"ipv6 empty payload then padding", eth(nil, setIPLen(AppendIP(nil, IPSpec{Src: v6a, Dst: v6b, Proto: ipv6NoNext}, make([]byte, 6)), 0)), LinkEthernet, Parsed{
			Link: LinkEthernet, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6a, Dst: v6b, Proto: ipv6NoNext, TTL: 64,
			IPOffset: 14, IPLen: 40, L4Offset: 54, PayloadOffset: 54, Length: 60,
		}},
		{"ipv4 gre is tracked generically", AppendIP(nil, IPSpec{Src: v4a, Dst: v4b, Proto: 47, TTL: 9}, make([]byte, 8)), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: 47, TTL: 9,
			IPLen: 28, L4Offset: 20, PayloadOffset: 20, PayloadLen: 8, Length: 28,
		}},
	}
}

func tcpUDPCases() []decodeCase {
	sack := AppendTCP(nil, TCPSpec{Src: ap(v6a, 40000), Dst: ap(v6b, 443), Seq: 1000, Ack: 2000, Flags: ACK, Window: 512, TTL: 5,
		Options: TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, NumSACK: 3, SACK: [4]SACKBlock{{10, 20}, {30, 40}, {50, 60}}}})
	fourSACK := withTCPOptions(tcp4(ACK, nil), []byte{1, 1, 5, 34,
		0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8})
	// Unknown option 30 skipped by length, MSS with a wrong length ignored, then EOL
	// with garbage after it that must not be read as options.
	oddOptions := withTCPOptions(tcp4(ACK, nil), []byte{30, 3, 0, 2, 3, 1, 1, 0, 2, 4, 9, 9})
	tsOnly := AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Seq: 1000, Ack: 2000, Flags: ACK, Window: 512, IPID: 77, DontFrag: true,
		Options: TCPOptions{HasTimestamps: true, TSVal: 0x01020304, TSEcr: 0xa0b0c0d0}})
	// The same 12 option bytes in another order must take the general walk.
	tsLate := withTCPOptions(tcp4(ACK, nil), []byte{8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 1, 1})
	return []decodeCase{
		{"tcp4 aligned timestamps", tsOnly, LinkRaw, with(wantTCP4(LinkRaw, 0, 52, ACK, 32, 0), func(p *Parsed) {
			p.TCPOpts = TCPOptions{HasTimestamps: true, TSVal: 0x01020304, TSEcr: 0xa0b0c0d0}
		})},
		{"tcp4 unaligned timestamps", tsLate, LinkRaw, with(wantTCP4(LinkRaw, 0, 52, ACK, 32, 0), func(p *Parsed) {
			p.TCPOpts = TCPOptions{HasTimestamps: true, TSVal: 0x01020304, TSEcr: 0xa0b0c0d0}
		})},
		{"tcp6 sack and timestamps", sack, LinkRaw, with(wantTCP6(LinkRaw, 0, 100, ACK, 60, 0), func(p *Parsed) {
			p.TCPOpts = TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6, NumSACK: 3, SACK: [4]SACKBlock{{10, 20}, {30, 40}, {50, 60}}}
		})},
		{"tcp4 four sack blocks", fourSACK, LinkRaw, with(wantTCP4(LinkRaw, 0, 76, ACK, 56, 0), func(p *Parsed) {
			p.TCPOpts = TCPOptions{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}
		})},
		{"tcp4 unknown and malformed-length options", oddOptions, LinkRaw, wantTCP4(LinkRaw, 0, 52, ACK, 32, 0)},
		{"tcp6 payload", tcp6(FIN|ACK, []byte("bye")), LinkRaw, wantTCP6(LinkRaw, 0, 63, FIN|ACK, 20, 3)},
		{"udp4 empty", udp4(nil), LinkRaw, wantUDP4(LinkRaw, 0, 28, 0)},
	}
}

func icmpCases() []decodeCase {
	echoData := []byte("ping")
	quotedErr := AppendICMPError(nil, 3, 1, v4a, v4b, udp4(nil))
	frag6 := withIPv6Ext(udp6(nil), ext6{typ: ipv6Fragment, size: 8, body: fragBody(0, true, 1)})

	errorV4 := func(name string, quoted []byte, inner Inner) decodeCase {
		pkt := AppendICMPError(nil, 3, 3, v4b, v4a, quoted)
		return decodeCase{name, pkt, LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4b, Dst: v4a, Proto: ProtoICMP, TTL: 64,
			IPLen: len(pkt), L4Offset: 20, ICMPType: 3, ICMPCode: 3, Inner: inner,
			PayloadOffset: 28, PayloadLen: len(quoted), Length: len(pkt),
		}}
	}
	errorV6 := func(name string, quoted []byte, inner Inner) decodeCase {
		pkt := AppendICMPError(nil, 1, 4, v6b, v6a, quoted)
		return decodeCase{name, pkt, LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6b, Dst: v6a, Proto: ProtoICMPv6, TTL: 64,
			IPLen: len(pkt), L4Offset: 40, ICMPType: 1, ICMPCode: 4, Inner: inner,
			PayloadOffset: 48, PayloadLen: len(quoted), Length: len(pkt),
		}}
	}
	return []decodeCase{
		{"icmp echo request", AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b, ID: 0x1234, Seq: 3, Payload: echoData}), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv4, IPVersion: 4, Src: v4a, Dst: v4b, Proto: ProtoICMP, TTL: 64,
			IPLen: 32, L4Offset: 20, ICMPType: 8, ICMPID: 0x1234, ICMPSeq: 3, PayloadOffset: 28, PayloadLen: 4, Length: 32,
		}},
		{"icmpv6 echo reply", AppendICMPEcho(nil, ICMPEchoSpec{Src: v6b, Dst: v6a, Reply: true, ID: 9, Seq: 65535}), LinkRaw, Parsed{
			Link: LinkRaw, EtherType: EtherTypeIPv6, IPVersion: 6, Src: v6b, Dst: v6a, Proto: ProtoICMPv6, TTL: 64,
			IPLen: 48, L4Offset: 40, ICMPType: 129, ICMPID: 9, ICMPSeq: 65535, PayloadOffset: 48, PayloadLen: 0, Length: 48,
		}},
		errorV4("icmp unreachable quoting tcp", tcp4(SYN, nil), Inner{Valid: true, Src: v4a, Dst: v4b, Proto: ProtoTCP, SrcPort: 40000, DstPort: 80, Seq: 1000}),
		errorV4("icmp unreachable quoting udp", udp4([]byte("dns?")), Inner{Valid: true, Src: v4a, Dst: v4b, Proto: ProtoUDP, SrcPort: 5000, DstPort: 53}),
		errorV4("icmp unreachable quoting echo", AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b, ID: 77, Seq: 1}), Inner{Valid: true, Src: v4a, Dst: v4b, Proto: ProtoICMP, ICMPType: 8, ID: 77}),
		errorV4("icmp unreachable quoting an icmp error", quotedErr, Inner{Valid: true, Src: v4a, Dst: v4b, Proto: ProtoICMP, ICMPType: 3}),
		errorV4("icmp quote cut inside transport", tcp4(SYN, nil)[:24], Inner{Src: v4a, Dst: v4b, Proto: ProtoTCP}),
		errorV4("icmp quote cut inside ip header", tcp4(SYN, nil)[:12], Inner{}),
		errorV4("icmp quoting a later fragment", fragment4(udp4(make([]byte, 40)), 16, false, 24), Inner{Src: v4a, Dst: v4b, Proto: ProtoUDP}),
		errorV4("icmp quoting ipv6 is ignored", udp6(nil), Inner{}),
		errorV6("icmpv6 unreachable quoting tcp", tcp6(SYN, nil), Inner{Valid: true, Src: v6a, Dst: v6b, Proto: ProtoTCP, SrcPort: 40000, DstPort: 443, Seq: 1000}),
		errorV6("icmpv6 unreachable quoting udp behind fragment header", frag6, Inner{Valid: true, Src: v6a, Dst: v6b, Proto: ProtoUDP, SrcPort: 5000, DstPort: 53}),
		errorV6("icmpv6 unreachable quoting echo", AppendICMPEcho(nil, ICMPEchoSpec{Src: v6a, Dst: v6b, ID: 5, Seq: 6}), Inner{Valid: true, Src: v6a, Dst: v6b, Proto: ProtoICMPv6, ICMPType: 128, ID: 5}),
		errorV6("icmpv6 quote cut inside ext header", frag6[:44], Inner{Src: v6a, Dst: v6b, Proto: ipv6Fragment}),
	}
}

// allGoodCases are the cases above, each frame decoded whole: its wire length is
// its length.
func allGoodCases() []decodeCase {
	cases := slices.Concat(linkCases(), ipCases(), tcpUDPCases(), icmpCases())
	for i := range cases {
		cases[i].want.WireLength = cases[i].want.Length
	}
	return cases
}

func TestDecode(t *testing.T) {
	for _, c := range allGoodCases() {
		t.Run(c.name, func(t *testing.T) {
			var p Parsed
			// Dirty p first: Decode must overwrite every field.
			p.VLAN, p.Inner.Valid, p.TCPOpts.NumSACK, p.ICMPType = 99, true, 4, 200
			if err := p.Decode(c.frame, c.link); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p != c.want {
				t.Errorf("Decode mismatch\n got %+v\nwant %+v", p, c.want)
			}
		})
	}
}

func TestDecodeSnaplenTruncated(t *testing.T) {
	frame := eth(nil, tcp4(ACK, bytes.Repeat([]byte{1}, 100)))
	var p Parsed
	if err := p.Decode(frame[:70], LinkEthernet); err != nil {
		t.Fatal(err)
	}
	if !p.Truncated() {
		t.Error("Truncated() = false for a frame cut inside its payload")
	}
	if got := len(p.Payload(frame[:70])); got != 16 {
		t.Errorf("captured payload %d bytes, want 16", got)
	}
	if err := p.Decode(frame, LinkEthernet); err != nil || p.Truncated() || len(p.Payload(frame)) != 100 {
		t.Errorf("whole frame: err %v, Truncated %v, payload %d", err, p.Truncated(), len(p.Payload(frame)))
	}
}

// An offloaded send (IP length 0) cut by the capture: told the wire length, the
// decoder takes the packet's length from it and reports the cut, as for any
// packet; without it, it can only go by what was captured, which is why the
// feeders pass it.
func TestDecodeWireOffloadedSend(t *testing.T) {
	frame := eth(nil, setIPLen(tcp4(ACK, bytes.Repeat([]byte{1}, 100_000)), 0))
	cut := frame[:200]
	var p Parsed
	if err := p.DecodeWire(cut, LinkEthernet, len(frame)); err != nil {
		t.Fatal(err)
	}
	if !p.IPLenFromWire || p.IPLen != len(frame)-14 || p.PayloadLen != 100_000 || !p.Truncated() {
		t.Errorf("cut offloaded send: from capture %v, IPLen %d, payload %d, truncated %v; want true, %d, 100000, true",
			p.IPLenFromWire, p.IPLen, p.PayloadLen, p.Truncated(), len(frame)-14)
	}
	if got := len(p.Payload(cut)); got != 200-54 {
		t.Errorf("captured payload %d bytes, want %d", got, 200-54)
	}
	// Without the wire length, a long cut passes for the whole send, and a short
	// one for a broken packet.
	if err := p.Decode(frame[:1000], LinkEthernet); err != nil || p.PayloadLen != 1000-54 || p.Truncated() {
		t.Errorf("1000 bytes without the wire length: err %v, payload %d, truncated %v", err, p.PayloadLen, p.Truncated())
	}
	if err := p.Decode(cut, LinkEthernet); err != ErrBadIPv4Header {
		t.Errorf("200 bytes without the wire length: err %v, want %v", err, ErrBadIPv4Header)
	}
	// A wire length below the captured one is the captured one.
	if err := p.DecodeWire(frame, LinkEthernet, 10); err != nil || p.WireLength != len(frame) || p.PayloadLen != 100_000 {
		t.Errorf("wire length 10: err %v, wire %d, payload %d", err, p.WireLength, p.PayloadLen)
	}
}

type errorCase struct {
	name  string
	frame []byte
	link  LinkType
	want  Error
}

func errorCases() []errorCase {
	t4 := tcp4(ACK, nil)
	u4 := udp4([]byte("data"))
	t6 := tcp6(ACK, nil)

	set := func(pkt []byte, f func([]byte)) []byte { out := slices.Clone(pkt); f(out); return out }
	arp := AppendEthernetType(nil, macA, macB, nil, EtherTypeARP, make([]byte, 28))
	tooManyTags := eth([]uint16{1, 2, 3, 4, 5, 6, 7, 8, 9}, t4)
	chain17 := make([]ext6, 17)
	for i := range chain17 {
		chain17[i] = ext6{typ: ipv6DestOptions, size: 8}
	}
	hbhSecond := withIPv6Ext(t6, ext6{typ: ipv6DestOptions, size: 8}, ext6{typ: ipv6HopByHop, size: 8})
	pastPayload := set(withIPv6Ext(t6, ext6{typ: ipv6DestOptions, size: 8}), func(b []byte) { b[41] = 200 })
	cutChain := withIPv6Ext(t6, ext6{typ: ipv6DestOptions, size: 64})[:40+32]

	return []errorCase{
		{"empty ethernet", nil, LinkEthernet, ErrTruncatedLink},
		{"short ethernet", make([]byte, 13), LinkEthernet, ErrTruncatedLink},
		{"vlan tag cut", eth([]uint16{5}, t4)[:16], LinkEthernet, ErrTruncatedLink},
		{"nine vlan tags", tooManyTags, LinkEthernet, ErrTooManyVLANTags},
		{"short sll", make([]byte, 15), LinkLinuxSLL, ErrTruncatedLink},
		{"short sll2", make([]byte, 19), LinkLinuxSLL2, ErrTruncatedLink},
		{"short null", []byte{2, 0, 0}, LinkNull, ErrTruncatedLink},
		{"unknown link type", t4, LinkType(147), ErrUnsupportedLink},
		{"arp", arp, LinkEthernet, ErrNotIP},
		{"null af unix", slices.Concat([]byte{1, 0, 0, 0}, t4), LinkNull, ErrNotIP},
		{"loop in host order", slices.Concat([]byte{2, 0, 0, 0}, t4), LinkLoop, ErrNotIP},
		{"raw empty", nil, LinkRaw, ErrTruncatedIPv4},
		{"ipv6 link empty", []byte{}, LinkIPv6, ErrTruncatedIPv6},
		{"raw version 5", set(t4, func(b []byte) { b[0] = 0x55 }), LinkRaw, ErrBadIPVersion},
		{"ipv4 link carrying ipv6", t6, LinkIPv4, ErrBadIPVersion},
		{"ipv6 link carrying ipv4", t4, LinkIPv6, ErrBadIPVersion},
		{"ethertype ipv4 carrying ipv6", AppendEthernetType(nil, macA, macB, nil, EtherTypeIPv4, t6), LinkEthernet, ErrBadIPVersion},
		{"ethertype ipv6 carrying ipv4", AppendEthernetType(nil, macA, macB, nil, EtherTypeIPv6, t4), LinkEthernet, ErrBadIPVersion},
		{"ipv4 header cut", eth(nil, t4)[:14+19], LinkEthernet, ErrTruncatedIPv4},
		{"ipv4 options cut", withIPv4Options(t4, make([]byte, 8))[:24], LinkRaw, ErrTruncatedIPv4},
		{"ipv4 ihl 4", set(t4, func(b []byte) { b[0] = 0x44 }), LinkRaw, ErrBadIPv4Header},
		{"ipv4 total length 19", set(t4, func(b []byte) { b[2], b[3] = 0, 19 }), LinkRaw, ErrBadIPv4Header},
		{"ipv4 total length 0 in a fragment", set(t4, func(b []byte) { b[2], b[3], b[6] = 0, 0, 0x20 }), LinkRaw, ErrBadIPv4Header},
		// Too short for an offloaded send: the Ethernet padding is not payload.
		{"ipv4 total length 0 padded", padTo60(eth(nil, setIPLen(t4, 0))), LinkEthernet, ErrBadIPv4Header},
		{"ipv6 payload length 0 padded", padTo60(eth(nil, setIPLen(t6, 0))), LinkEthernet, ErrTruncatedTCP},
		{"ipv4 total length 0 icmp", setIPLen(AppendIP(nil, IPSpec{Src: v4a, Dst: v4b, Proto: ProtoICMP}, make([]byte, 1000)), 0), LinkRaw, ErrBadIPv4Header},
		{"udp length 0 with an ip length", setUDPLen(udp4([]byte{1, 2}), 0), LinkRaw, ErrBadUDPLength},
		{"ipv4 total length inside options", set(withIPv4Options(t4, make([]byte, 4)), func(b []byte) { b[2], b[3] = 0, 22 }), LinkRaw, ErrBadIPv4Header},
		{"ipv6 header cut", t6[:39], LinkRaw, ErrTruncatedIPv6},
		{"ipv6 hop-by-hop second", hbhSecond, LinkRaw, ErrBadIPv6ExtChain},
		{"ipv6 seventeen ext headers", withIPv6Ext(t6, chain17...), LinkRaw, ErrBadIPv6ExtChain},
		{"ipv6 ext header past payload length", pastPayload, LinkRaw, ErrBadIPv6ExtChain},
		{"ipv6 payload length inside ext header", set(withIPv6Ext(t6, ext6{typ: ipv6Routing, size: 16}), func(b []byte) { b[4], b[5] = 0, 1 }), LinkRaw, ErrBadIPv6ExtChain},
		{"ipv6 ext header past capture", cutChain, LinkRaw, ErrTruncatedIPv6},
		{"tcp header cut by capture", t4[:30], LinkRaw, ErrTruncatedTCP},
		{"tcp segment shorter than header", fixIPv4(slices.Clone(t4[:30])), LinkRaw, ErrTruncatedTCP},
		{"tcp data offset 4", setTCPDataOffset(t4, 20, 4), LinkRaw, ErrBadTCPHeader},
		{"tcp data offset past segment", setTCPDataOffset(t4, 20, 6), LinkRaw, ErrBadTCPHeader},
		{"tcp options cut by capture", withTCPOptions(tcp4(ACK, make([]byte, 50)), []byte{1, 1, 1, 1})[:42], LinkRaw, ErrTruncatedTCP},
		{"tcp option length 1", withTCPOptions(t4, []byte{2, 1, 0, 0}), LinkRaw, ErrBadTCPOption},
		{"tcp option length 0", withTCPOptions(t4, []byte{8, 0, 0, 0}), LinkRaw, ErrBadTCPOption},
		{"tcp option past header", withTCPOptions(t4, []byte{1, 1, 8, 10}), LinkRaw, ErrBadTCPOption},
		{"tcp option kind at end", withTCPOptions(t4, []byte{1, 1, 1, 2}), LinkRaw, ErrBadTCPOption},
		{"tiny tcp first fragment", fragment4(tcp4(ACK, make([]byte, 40)), 0, true, 16), LinkRaw, ErrTinyFragment},
		{"tcp first fragment cutting options", fragment4(withTCPOptions(tcp4(ACK, make([]byte, 40)), make([]byte, 20)), 0, true, 32), LinkRaw, ErrTinyFragment},
		{"tiny udp first fragment", fragment4(udp4(make([]byte, 40)), 0, true, 4), LinkRaw, ErrTinyFragment},
		{"udp segment shorter than header", fixIPv4(slices.Clone(u4[:26])), LinkRaw, ErrTruncatedUDP},
		{"udp header cut by capture", u4[:26], LinkRaw, ErrTruncatedUDP},
		{"udp length 7", set(u4, func(b []byte) { b[24], b[25] = 0, 7 }), LinkRaw, ErrBadUDPLength},
		{"udp length past ip payload", set(u4, func(b []byte) { b[24], b[25] = 0, 13 }), LinkRaw, ErrBadUDPLength},
		{"udp6 length past ip payload", set(udp6(nil), func(b []byte) { b[44], b[45] = 0, 9 }), LinkRaw, ErrBadUDPLength},
		{"icmp shorter than 8", fixIPv4(slices.Clone(AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b})[:24])), LinkRaw, ErrTruncatedICMP},
		{"icmpv6 cut by capture", AppendICMPEcho(nil, ICMPEchoSpec{Src: v6a, Dst: v6b})[:44], LinkRaw, ErrTruncatedICMP},
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range errorCases() {
		t.Run(c.name, func(t *testing.T) {
			var p Parsed
			err := p.Decode(c.frame, c.link)
			if err != c.want {
				t.Fatalf("Decode error = %v, want %v", err, c.want)
			}
			if p.Length != len(c.frame) || p.Link != c.link {
				t.Errorf("Length %d Link %d, want %d %d", p.Length, p.Link, len(c.frame), c.link)
			}
		})
	}
}

func TestDecodeKeepsHeadersBeforeError(t *testing.T) {
	var p Parsed
	err := p.Decode(setTCPDataOffset(tcp4(ACK, nil), 20, 3), LinkRaw)
	if err != ErrBadTCPHeader {
		t.Fatalf("err %v", err)
	}
	if p.Src != v4a || p.Dst != v4b || p.SrcPort != 40000 || p.DstPort != 80 || p.TCPHeaderLen != 12 {
		t.Errorf("headers before the error lost: %+v", p)
	}
	arp := AppendEthernetType(nil, macA, macB, []uint16{7}, EtherTypeARP, nil)
	if err := p.Decode(arp, LinkEthernet); err != ErrNotIP || p.EtherType != EtherTypeARP || p.VLAN != 7 || p.IPVersion != 0 {
		t.Errorf("arp: err %v, %+v", err, p)
	}
}

// truncationErrors are the only errors a capture cut short may produce: cutting a
// well-formed packet must never look like a malformed one.
var truncationErrors = map[Error]bool{
	ErrTruncatedLink: true, ErrTruncatedIPv4: true, ErrTruncatedIPv6: true,
	ErrTruncatedTCP: true, ErrTruncatedUDP: true, ErrTruncatedICMP: true,
}

func TestDecodeEveryTruncation(t *testing.T) {
	for _, c := range allGoodCases() {
		for n := 0; n < len(c.frame); n++ {
			cut := c.frame[:n:n] // capacity n too: reading past it would panic
			var p Parsed
			// The length on the wire, as a capture record says: the frame's, or
			// the IP packet's for a case that is itself a snapshot-length cut.
			wire := max(len(c.frame), c.want.IPOffset+c.want.IPLen)
			err := p.DecodeWire(cut, c.link, wire)
			name := fmt.Sprintf("%s cut at %d", c.name, n)
			if err != nil {
				e, ok := err.(Error)
				if !ok || !truncationErrors[e] {
					t.Errorf("%s: error %v is not a truncation error", name, err)
				}
				if p.IPVersion != 0 && (p.Src != c.want.Src || p.Dst != c.want.Dst) {
					t.Errorf("%s: addresses %v -> %v, want %v -> %v", name, p.Src, p.Dst, c.want.Src, c.want.Dst)
				}
				continue
			}
			// Success on a cut frame: the headers were all there, so everything but
			// the frame length (and the ICMP quote, which is cut too) must match.
			want := c.want
			want.Length, want.WireLength = n, wire
			if p.IsICMPError() {
				want.Inner = p.Inner
			}
			if p != want {
				t.Errorf("%s: prefix decode differs\n got %+v\nwant %+v", name, p, want)
			}
			if p.Payload(cut) == nil && p.PayloadLen > 0 && p.PayloadOffset < n {
				t.Errorf("%s: Payload nil", name)
			}
		}
	}
}

func TestErrorClasses(t *testing.T) {
	for e := Error(1); e < errorCount; e++ {
		classes := 0
		for _, c := range []bool{e.Unsupported(), e.BadChecksum(), e.Malformed()} {
			if c {
				classes++
			}
		}
		if classes != 1 {
			t.Errorf("%d (%v) is in %d classes, want exactly 1", e, e, classes)
		}
		if e.Error() == "packet: unknown error" {
			t.Errorf("%d has no text", e)
		}
	}
	if !ErrNotIP.Unsupported() || !ErrUnsupportedLink.Unsupported() || ErrBadTCPOption.Unsupported() {
		t.Error("unsupported class wrong")
	}
	if !ErrBadTCPChecksum.BadChecksum() || !ErrMissingUDPChecksum.BadChecksum() || ErrBadUDPLength.BadChecksum() {
		t.Error("checksum class wrong")
	}
	if Error(0).Malformed() || Error(200).Error() != "packet: unknown error" {
		t.Error("zero or out-of-range Error misclassified")
	}
	var _ = netip.Addr{}
}

// A packet whose IP header claims more bytes than the packet had on the wire is
// malformed (Linux's IP layer drops it); without a wire length, or when the
// capture cut the packet, it is a snapshot-length cut.
func TestDecodeIPLengthBeyondWire(t *testing.T) {
	for _, ip := range [][]byte{tcp4(ACK, bytes.Repeat([]byte{1}, 100)), tcp6(ACK, bytes.Repeat([]byte{1}, 100))} {
		short := ip[:len(ip)-60]
		var p Parsed
		if err := p.DecodeWire(short, LinkRaw, len(short)); err != ErrIPBeyondWire || p.Proto != ProtoTCP {
			t.Errorf("IPv%d claiming 60 bytes more than the wire: err %v, proto %v", p.IPVersion, err, p.Proto)
		}
		if err := p.DecodeWire(short, LinkRaw, len(ip)); err != nil || !p.Truncated() {
			t.Errorf("IPv%d cut by the capture: err %v, truncated %v", p.IPVersion, err, p.Truncated())
		}
		if err := p.Decode(short, LinkRaw); err != nil || !p.Truncated() {
			t.Errorf("IPv%d, wire length unknown: err %v, truncated %v", p.IPVersion, err, p.Truncated())
		}
	}
}
