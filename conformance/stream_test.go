package conformance

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"keepstate/capture"
	"keepstate/packet"
	"keepstate/synth"
)

// writeCapture writes frames (with their link type) as a pcapng capture and
// returns its path. caps[i] > 0 cuts frame i to that many bytes, as a snapshot
// length would.
func writeCapture(t *testing.T, link packet.LinkType, frames [][]byte, caps map[int]int) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := capture.NewNgWriter(&buf, []capture.Interface{{Name: "tap", Link: link}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i, f := range frames {
		data := f
		if n := caps[i]; n > 0 {
			data = f[:n]
		}
		if err := w.WritePacket(0, at+int64(i)*1e6, data, len(f), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	cli = netip.MustParseAddrPort("192.0.2.1:40000")
	srv = netip.MustParseAddrPort("198.51.100.1:443")
)

// Frames are re-framed as untagged Ethernet, sent from the side of their
// connection, tagged where connection tracking does not look, with DSCP cleared and
// a valid IPv4 header checksum, and nothing else changed.
func TestStreamReframesAndTags(t *testing.T) {
	c := synth.NewConv(cli, srv, 1)
	v6 := synth.NewConv(netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:80"), 2)
	ips := [][]byte{
		c.Segment(synth.FromClient, packet.SYN, 0),
		c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0),
		v6.Segment(synth.FromServer, packet.ACK, 0), // first seen from this end: its client
		c.Segment(synth.FromClient, packet.ACK|packet.PSH, 10),
		v6.Segment(synth.FromClient, packet.ACK, 0),
	}
	ips[3][1] = 0xb8 // DSCP EF: cleared
	var frames [][]byte
	for i, ip := range ips {
		if i%2 == 0 {
			frames = append(frames, packet.AppendEthernet(nil, [6]byte{1}, [6]byte{2}, []uint16{10, 20}, ip))
		} else {
			frames = append(frames, packet.AppendEthernet(nil, [6]byte{1}, [6]byte{2}, nil, ip))
		}
	}
	s, err := ReadStream(writeCapture(t, packet.LinkEthernet, frames, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Frames) != 5 || s.TCP != 5 || s.Records != 5 {
		t.Fatalf("%d frames of %d TCP in %d records, want 5 of 5 in 5", len(s.Frames), s.TCP, s.Records)
	}
	wantSide := []Side{ClientSide, ServerSide, ClientSide, ClientSide, ServerSide}
	for i, f := range s.Frames {
		var p packet.Parsed
		if err := p.Decode(f.Data, packet.LinkEthernet); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if p.VLANTags != 0 || p.TOS>>2 != 0 {
			t.Errorf("frame %d: %d VLAN tags, TOS %#x: want untagged, DSCP 0", i, p.VLANTags, p.TOS)
		}
		if f.Side != wantSide[i] {
			t.Errorf("frame %d from the %v side, want %v", i, f.Side, wantSide[i])
		}
		if got := tagOf(f.Data[14:]); got != uint32(i) || f.Tag != uint32(i) {
			t.Errorf("frame %d: tag %d (field %d), want %d", i, f.Tag, got, i)
		}
		if err := p.VerifyChecksums(f.Data); err != nil {
			t.Errorf("frame %d: %v", i, err)
		}
		// Everything connection tracking reads is as captured.
		orig := ips[i]
		var q packet.Parsed
		if err := q.Decode(orig, packet.LinkRaw); err != nil {
			t.Fatal(err)
		}
		if p.Src != q.Src || p.Dst != q.Dst || p.SrcPort != q.SrcPort || p.DstPort != q.DstPort ||
			p.Seq != q.Seq || p.Ack != q.Ack || p.TCPFlags != q.TCPFlags || p.Window != q.Window ||
			p.PayloadLen != q.PayloadLen || p.TCPOpts != q.TCPOpts || len(f.Data)-14 != len(orig) {
			t.Errorf("frame %d changed: %+v\nwas %+v", i, p, q)
		}
	}
}

// A payload the snapshot length cut is padded back to its length on the wire;
// a fragment and a packet cut inside its TCP header are skipped and counted;
// what is not TCP is ignored; SLL and raw IP captures re-frame alike.
func TestStreamSkipsAndPads(t *testing.T) {
	c := synth.NewConv(cli, srv, 3)
	data := c.Segment(synth.FromClient, packet.ACK|packet.PSH, 400)
	frag := packet.AppendTCP(nil, packet.TCPSpec{Src: cli, Dst: srv, Flags: packet.ACK, Payload: make([]byte, 100)})
	frag[6] |= 0x20 // more fragments
	udp := packet.AppendUDP(nil, packet.UDPSpec{Src: cli, Dst: srv, Payload: []byte("x")})
	hdrCut := c.Segment(synth.FromServer, packet.ACK, 0)
	for _, link := range []packet.LinkType{packet.LinkRaw, packet.LinkLinuxSLL} {
		wrap := func(ip []byte) []byte {
			if link == packet.LinkLinuxSLL {
				return packet.AppendSLL(nil, 0, [6]byte{1}, ip)
			}
			return ip
		}
		hdr := 0
		if link == packet.LinkLinuxSLL {
			hdr = 16
		}
		path := writeCapture(t, link, [][]byte{wrap(data), wrap(frag), wrap(udp), wrap(hdrCut)},
			map[int]int{0: hdr + 60, 3: hdr + 30})
		s, err := ReadStream(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Frames) != 1 || s.TCP != 3 || s.Skipped[SkipFragment] != 1 || s.Skipped[SkipCutHeader] != 1 {
			t.Fatalf("%v: %d frames, %d TCP, skipped %v", link, len(s.Frames), s.TCP, s.Skipped)
		}
		f := s.Frames[0]
		if !f.Padded || len(f.Data) != 14+len(data) || !bytes.Equal(f.Data[14+60:], make([]byte, len(data)-60)) {
			t.Errorf("%v: cut frame not padded back to %d bytes: %d, padded %v", link, len(data), len(f.Data)-14, f.Padded)
		}
	}
}

// keepstate's side of the comparison is the engine with its permit-all rule and
// the mode's handshake setting, nothing else: a mid-stream packet is refused in
// strict mode only, and many connections from one source are never limited.
func TestDecideKeepstate(t *testing.T) {
	var frames [][]byte
	for i := range 700 {
		c := synth.NewConv(netip.AddrPortFrom(cli.Addr(), uint16(10000+i)), srv, uint32(i))
		frames = append(frames, packet.AppendEthernet(nil, [6]byte{1}, [6]byte{2}, nil, c.Segment(synth.FromClient, packet.SYN, 0)))
	}
	mid := synth.NewConv(netip.AddrPortFrom(cli.Addr(), 9), srv, 9)
	frames = append(frames, packet.AppendEthernet(nil, [6]byte{1}, [6]byte{2}, nil, mid.Segment(synth.FromClient, packet.ACK, 0)))
	s, err := ReadStream(writeCapture(t, packet.LinkEthernet, frames, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Modes {
		v, err := DecideKeepstate(s, m)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 700 {
			if !v[i].Pass {
				t.Fatalf("%v: SYN %d: %v", m, i, v[i])
			}
		}
		last := v[700]
		if want := m == Loose; last.Pass != want {
			t.Errorf("%v: mid-stream ACK: %v, want pass %v", m, last, want)
		}
	}
}
