package nfqueue

import (
	"net/netip"
	"testing"

	"keepstate/packet"
)

func TestAppendAnswer(t *testing.T) {
	cli := netip.MustParseAddrPort("198.18.1.2:40000")
	srv := netip.MustParseAddrPort("198.18.2.2:8081")
	cli6 := netip.MustParseAddrPort("[fd00:ca7e:1::2]:40000")
	srv6 := netip.MustParseAddrPort("[fd00:ca7e:2::2]:9001")
	tcp := func(src, dst netip.AddrPort, flags packet.TCPFlags, seq, ack uint32, payload string) []byte {
		return packet.AppendTCP(nil, packet.TCPSpec{Src: src, Dst: dst, Flags: flags, Seq: seq, Ack: ack, Window: 1000, Payload: []byte(payload)})
	}
	udp := func(src, dst netip.AddrPort) []byte {
		return packet.AppendUDP(nil, packet.UDPSpec{Src: src, Dst: dst, Payload: []byte("knock")})
	}
	type want struct {
		answered bool
		proto    packet.Proto
		src, dst netip.Addr
		flags    packet.TCPFlags
		seq, ack uint32
		icmpType uint8
		icmpCode uint8
	}
	tests := []struct {
		name  string
		frame []byte
		want  want
	}{
		{"SYN gets RST+ACK acknowledging the SYN", tcp(cli, srv, packet.SYN, 1000, 0, ""),
			want{true, packet.ProtoTCP, srv.Addr(), cli.Addr(), packet.RST | packet.ACK, 0, 1001, 0, 0}},
		{"ACK with data gets RST at its ack", tcp(cli, srv, packet.ACK|packet.PSH, 5000, 777, "hello"),
			want{true, packet.ProtoTCP, srv.Addr(), cli.Addr(), packet.RST, 777, 0, 0, 0}},
		{"FIN with data and no ACK counts both", tcp(cli, srv, packet.FIN, 10, 0, "abc"),
			want{true, packet.ProtoTCP, srv.Addr(), cli.Addr(), packet.RST | packet.ACK, 0, 14, 0, 0}},
		{"SYN over IPv6", tcp(cli6, netip.AddrPortFrom(srv6.Addr(), 8081), packet.SYN, 1, 0, ""),
			want{true, packet.ProtoTCP, srv6.Addr(), cli6.Addr(), packet.RST | packet.ACK, 0, 2, 0, 0}},
		{"RST is never answered", tcp(cli, srv, packet.RST, 1, 0, ""), want{}},
		{"UDP gets ICMP admin prohibited", udp(cli, netip.AddrPortFrom(srv.Addr(), 9001)),
			want{true, packet.ProtoICMP, srv.Addr(), cli.Addr(), 0, 0, 0, 3, 13}},
		{"UDP over IPv6 gets ICMPv6 admin prohibited", udp(cli6, srv6),
			want{true, packet.ProtoICMPv6, srv6.Addr(), cli6.Addr(), 0, 0, 0, 1, 1}},
		{"echo request gets ICMP admin prohibited",
			packet.AppendICMPEcho(nil, packet.ICMPEchoSpec{Src: cli.Addr(), Dst: srv.Addr(), ID: 1, Seq: 1}),
			want{true, packet.ProtoICMP, srv.Addr(), cli.Addr(), 0, 0, 0, 3, 13}},
		{"ICMP error is never answered",
			packet.AppendICMPError(nil, 3, 1, cli.Addr(), srv.Addr(), udp(srv, cli)), want{}},
		{"multicast destination", udp(cli, netip.MustParseAddrPort("239.1.2.3:9001")), want{}},
		{"broadcast destination", udp(cli, netip.MustParseAddrPort("255.255.255.255:67")), want{}},
		{"unspecified source", udp(netip.MustParseAddrPort("0.0.0.0:68"), srv), want{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p packet.Parsed
			if err := p.Decode(tc.frame, packet.LinkRaw); err != nil {
				t.Fatal(err)
			}
			prefix := []byte("keep")
			got, ok := appendAnswer(prefix, &p, tc.frame)
			if ok != tc.want.answered {
				t.Fatalf("answered = %v, want %v", ok, tc.want.answered)
			}
			if string(got[:4]) != "keep" {
				t.Fatalf("answer overwrote the buffer's start")
			}
			if !ok {
				if len(got) != 4 {
					t.Errorf("no answer but %d bytes appended", len(got)-4)
				}
				return
			}
			var a packet.Parsed
			if err := a.Decode(got[4:], packet.LinkRaw); err != nil {
				t.Fatalf("answer does not decode: %v", err)
			}
			if err := a.VerifyChecksums(got[4:]); err != nil {
				t.Errorf("answer checksums: %v", err)
			}
			w := tc.want
			if a.Proto != w.proto || a.Src != w.src || a.Dst != w.dst || a.TTL != answerTTL {
				t.Errorf("answer %v %v -> %v ttl %d, want %v %v -> %v", a.Proto, a.Src, a.Dst, a.TTL, w.proto, w.src, w.dst)
			}
			switch w.proto {
			case packet.ProtoTCP:
				if a.TCPFlags != w.flags || a.Seq != w.seq || a.Ack != w.ack || a.SrcPort != p.DstPort || a.DstPort != p.SrcPort || a.PayloadLen != 0 {
					t.Errorf("RST flags %v seq %d ack %d ports %d->%d, want %v seq %d ack %d ports %d->%d",
						a.TCPFlags, a.Seq, a.Ack, a.SrcPort, a.DstPort, w.flags, w.seq, w.ack, p.DstPort, p.SrcPort)
				}
			default:
				if a.ICMPType != w.icmpType || a.ICMPCode != w.icmpCode {
					t.Errorf("ICMP type %d code %d, want %d/%d", a.ICMPType, a.ICMPCode, w.icmpType, w.icmpCode)
				}
				// The quote names the refused packet, so the sender's stack finds its socket.
				in := a.Inner
				if !in.Valid || in.Src != p.Src || in.Dst != p.Dst || in.Proto != p.Proto || in.SrcPort != p.SrcPort || in.DstPort != p.DstPort {
					t.Errorf("quoted %+v, want the refused packet %v:%d -> %v:%d", in, p.Src, p.SrcPort, p.Dst, p.DstPort)
				}
			}
		})
	}
}

// A later fragment has no transport header to answer about.
func TestAppendAnswerLaterFragment(t *testing.T) {
	var p packet.Parsed
	frame := packet.AppendUDP(nil, packet.UDPSpec{Src: netip.MustParseAddrPort("198.18.1.2:1"), Dst: netip.MustParseAddrPort("198.18.2.2:2")})
	if err := p.Decode(frame, packet.LinkRaw); err != nil {
		t.Fatal(err)
	}
	p.Frag = packet.LaterFragment
	if _, ok := appendAnswer(nil, &p, frame); ok {
		t.Error("later fragment answered")
	}
}
