package packet

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
)

func TestVerifyChecksums(t *testing.T) {
	flip := func(pkt []byte, at int) []byte { out := slices.Clone(pkt); out[at] ^= 0x10; return out }
	t4 := tcp4(ACK|PSH, []byte("some data"))
	t6 := tcp6(ACK, []byte("odd"))
	u4 := udp4([]byte("q"))
	u6 := udp6([]byte("qq"))
	e4 := AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b, ID: 1, Seq: 2, Payload: []byte("x")})
	e6 := AppendICMPEcho(nil, ICMPEchoSpec{Src: v6a, Dst: v6b, ID: 1, Seq: 2, Payload: []byte("x")})
	err6 := AppendICMPError(nil, 2, 0, v6b, v6a, t6)
	u4NoSum := AppendUDP(nil, UDPSpec{Src: ap(v4a, 1), Dst: ap(v4b, 2), NoChecksum: true})
	u6NoSum := AppendUDP(nil, UDPSpec{Src: ap(v6a, 1), Dst: ap(v6b, 2), NoChecksum: true})

	// A routing header with a segment left: the sender summed the final destination
	// (v6b), while the IPv6 header names the next hop.
	nextHop := netip.MustParseAddr("2001:db8:1::9") // not v6b with 0xffff swapped for 0: the same sum
	routed := withIPv6Ext(tcp6(SYN, nil), ext6{typ: ipv6Routing, size: 24, body: slices.Concat([]byte{2, 1, 0, 0, 0, 0}, v6b.AsSlice())})
	copy(routed[24:40], nextHop.AsSlice())
	srh := withIPv6Ext(tcp6(SYN, nil), ext6{typ: ipv6Routing, size: 40, body: slices.Concat([]byte{4, 1, 1, 0, 0, 0}, v6b.AsSlice(), nextHop.AsSlice())})
	copy(srh[24:40], nextHop.AsSlice())
	rpl := withIPv6Ext(tcp6(SYN, nil), ext6{typ: ipv6Routing, size: 24, body: []byte{3, 1}})
	copy(rpl[24:40], nextHop.AsSlice())
	withDestOpts := withIPv6Ext(tcp6(SYN, nil), ext6{typ: ipv6DestOptions, size: 8})

	cases := []struct {
		name  string
		frame []byte
		link  LinkType
		want  error
	}{
		{"tcp4 good", t4, LinkRaw, nil},
		{"tcp4 good in vlan frame", eth([]uint16{3}, t4), LinkEthernet, nil},
		{"tcp4 good with ethernet padding", append(eth(nil, udp4(nil)), make([]byte, 18)...), LinkEthernet, nil},
		{"tcp6 good", t6, LinkRaw, nil},
		{"udp4 good", u4, LinkRaw, nil},
		{"udp6 good", u6, LinkRaw, nil},
		{"icmp good", e4, LinkRaw, nil},
		{"icmpv6 good", e6, LinkRaw, nil},
		{"icmpv6 error good", err6, LinkRaw, nil},
		{"ipv6 with dest options good", withDestOpts, LinkRaw, nil},
		{"routing type 2 uses final destination", routed, LinkRaw, nil},
		{"segment routing uses segment 0", srh, LinkRaw, nil},
		{"unknown routing type is not checked", rpl, LinkRaw, nil},
		{"udp4 zero checksum means none", u4NoSum, LinkRaw, nil},
		{"udp6 zero checksum", u6NoSum, LinkRaw, ErrMissingUDPChecksum},
		{"ipv4 header", flip(t4, 8), LinkRaw, ErrBadIPv4Checksum},
		{"tcp4 payload", flip(t4, len(t4)-1), LinkRaw, ErrBadTCPChecksum},
		{"tcp6 source address", flip(t6, 9), LinkRaw, ErrBadTCPChecksum},
		{"udp4 payload", flip(u4, len(u4)-1), LinkRaw, ErrBadUDPChecksum},
		{"udp6 port", flip(u6, 41), LinkRaw, ErrBadUDPChecksum},
		{"icmp payload", flip(e4, len(e4)-1), LinkRaw, ErrBadICMPChecksum},
		{"icmpv6 destination address", flip(e6, 39), LinkRaw, ErrBadICMPv6Checksum},
		{"routing header without the final destination fix", func() []byte { b := slices.Clone(routed); copy(b[48:64], nextHop.AsSlice()); return b }(), LinkRaw, ErrBadTCPChecksum},
		{"bad transport skipped when snapped", flip(t4, len(t4)-1)[:len(t4)-2], LinkRaw, nil},
		{"ipv4 header still checked when snapped", flip(t4, 8)[:len(t4)-2], LinkRaw, ErrBadIPv4Checksum},
		{"bad transport skipped in fragment", fixIPv4(flip(fragment4(t4, 0, true, 24), 30)), LinkRaw, nil},
		{"gre has no transport checksum", AppendIP(nil, IPSpec{Src: v4a, Dst: v4b, Proto: 47}, []byte{1, 2, 3}), LinkRaw, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Parsed
			if err := p.Decode(c.frame, c.link); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := p.VerifyChecksums(c.frame); err != c.want {
				t.Errorf("VerifyChecksums = %v, want %v", err, c.want)
			}
		})
	}
}

// A zero UDP checksum computed as zero is sent as 0xffff (RFC 768); find a payload
// whose sum lands there and check both sides agree.
func TestUDPChecksumZeroIsSentAsOnes(t *testing.T) {
	for i := range 1 << 16 {
		var pl [2]byte
		binary.BigEndian.PutUint16(pl[:], uint16(i))
		pkt := AppendUDP(nil, UDPSpec{Src: ap(v4a, 1), Dst: ap(v4b, 2), Payload: pl[:]})
		if binary.BigEndian.Uint16(pkt[26:]) != 0xffff {
			continue
		}
		var p Parsed
		if err := p.Decode(pkt, LinkRaw); err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyChecksums(pkt); err != nil {
			t.Fatalf("payload %#04x: %v", i, err)
		}
		return
	}
	t.Fatal("no payload produced a 0xffff checksum")
}

func TestVerifyChecksumsNeverReadsOutside(t *testing.T) {
	frame := eth(nil, tcp6(ACK, []byte("x")))
	var p Parsed
	if err := p.Decode(frame, LinkEthernet); err != nil {
		t.Fatal(err)
	}
	// Verify against shorter slices than p was decoded from: a caller bug, but it
	// must not panic.
	for n := 0; n <= len(frame); n++ {
		_ = p.VerifyChecksums(frame[:n:n])
	}
	bogus := p
	bogus.IPOffset, bogus.L4Offset, bogus.IPLen = 50, -3, 1<<20
	_ = bogus.VerifyChecksums(frame)
}
