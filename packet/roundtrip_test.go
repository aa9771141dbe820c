package packet

import (
	"net/netip"
	"testing"
)

// FuzzBuildDecode builds packets from fuzzed specs and checks that Decode reads back
// exactly what the builders wrote and that their checksums verify: the builders
// and the decoder check each other.
func FuzzBuildDecode(f *testing.F) {
	f.Add(true, uint16(1), uint16(2), uint32(3), uint32(4), uint8(SYN), uint16(5), uint8(0xff), uint16(1460), uint8(7), uint8(3), []byte("payload"), uint8(0))
	f.Add(false, uint16(65535), uint16(0), uint32(0), uint32(1<<31), uint8(ACK|PSH), uint16(0), uint8(0), uint16(0), uint8(0), uint8(0), []byte{}, uint8(1))
	f.Add(true, uint16(53), uint16(53), uint32(0), uint32(0), uint8(0), uint16(0), uint8(0), uint16(0), uint8(0), uint8(0), []byte("x"), uint8(2))
	f.Add(false, uint16(1), uint16(1), uint32(0), uint32(0), uint8(0), uint16(0), uint8(0), uint16(0), uint8(0), uint8(0), []byte("echo"), uint8(3))
	f.Fuzz(func(t *testing.T, v4 bool, sport, dport uint16, seq, ack uint32, flags uint8, window uint16,
		optMask uint8, mss uint16, wscale, nsack uint8, payload []byte, kind uint8) {
		if len(payload) > 1400 {
			payload = payload[:1400]
		}
		src, dst := v6a, v6b
		if v4 {
			src, dst = v4a, v4b
		}
		var b []byte
		var want Parsed
		switch kind % 4 {
		case 0:
			opts := TCPOptions{
				HasMSS: optMask&1 != 0, MSS: mss, HasWScale: optMask&2 != 0, WScale: wscale,
				SACKPermitted: optMask&4 != 0, HasTimestamps: optMask&8 != 0, TSVal: seq ^ 0x5a5a, TSEcr: ack ^ 0xa5a5,
				NumSACK: nsack % 5,
			}
			for i := range opts.SACK[:opts.NumSACK] {
				opts.SACK[i] = SACKBlock{seq + uint32(i), ack + uint32(i)}
			}
			if !opts.HasMSS {
				opts.MSS = 0
			}
			if !opts.HasWScale {
				opts.WScale = 0
			}
			if !opts.HasTimestamps {
				opts.TSVal, opts.TSEcr = 0, 0
			}
			b = AppendTCP(nil, TCPSpec{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, dport), Seq: seq, Ack: ack,
				Flags: TCPFlags(flags), Window: window, Options: opts, Payload: payload})
			// The builder drops SACK blocks that do not fit; the rest must come back.
			_, fit := tcpOptionsLen(&opts)
			opts.NumSACK = uint8(fit)
			for i := fit; i < len(opts.SACK); i++ {
				opts.SACK[i] = SACKBlock{}
			}
			want = Parsed{Proto: ProtoTCP, SrcPort: sport, DstPort: dport, Seq: seq, Ack: ack, TCPFlags: TCPFlags(flags), Window: window, TCPOpts: opts}
		case 1:
			b = AppendUDP(nil, UDPSpec{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, dport), Payload: payload})
			want = Parsed{Proto: ProtoUDP, SrcPort: sport, DstPort: dport}
		case 2, 3:
			reply := kind%4 == 3
			b = AppendICMPEcho(nil, ICMPEchoSpec{Src: src, Dst: dst, Reply: reply, ID: sport, Seq: dport, Payload: payload})
			want = Parsed{Proto: ProtoICMP, ICMPID: sport, ICMPSeq: dport}
			if !v4 {
				want.Proto = ProtoICMPv6
			}
			var p Parsed
			if err := p.Decode(b, LinkRaw); err != nil {
				t.Fatal(err)
			}
			if p.IsEchoReply() != reply || p.IsEchoRequest() == reply {
				t.Fatalf("echo reply=%v decoded as type %d", reply, p.ICMPType)
			}
			switch { // echo request and reply types, ICMP and ICMPv6
			case v4 && reply:
				want.ICMPType = 0
			case v4:
				want.ICMPType = 8
			case reply:
				want.ICMPType = 129
			default:
				want.ICMPType = 128
			}
		}

		frame := AppendEthernet(nil, macA, macB, []uint16{uint16(window) & 0xfff}, b)
		var p Parsed
		if err := p.Decode(frame, LinkEthernet); err != nil {
			t.Fatalf("Decode of a built packet: %v\n% x", err, frame)
		}
		if err := p.VerifyChecksums(frame); err != nil {
			t.Fatalf("VerifyChecksums of a built packet: %v", err)
		}
		got := Parsed{Proto: p.Proto, SrcPort: p.SrcPort, DstPort: p.DstPort, Seq: p.Seq, Ack: p.Ack, TCPFlags: p.TCPFlags,
			Window: p.Window, TCPOpts: p.TCPOpts, ICMPType: p.ICMPType, ICMPID: p.ICMPID, ICMPSeq: p.ICMPSeq}
		if got != want {
			t.Fatalf("round trip differs\n got %+v\nwant %+v", got, want)
		}
		if p.Src != src || p.Dst != dst || p.PayloadLen != len(payload) || string(p.Payload(frame)) != string(payload) || p.VLAN != window&0xfff {
			t.Fatalf("addresses, payload or VLAN differ: %+v", p)
		}
	})
}
