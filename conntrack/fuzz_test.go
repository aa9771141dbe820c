package conntrack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	tab := New(Config{Strict: false, Timeouts: Timeouts{UDPUnreplied: time.Second}})
	for i := range 3 {
		tab.Create(udp(addr4(i), srvAddr, 1, 53, 0), t0, Meta{Rule: uint32(i)})
	}
	tab.Create(seg(Original, S, cliISN, 0, 0), t0, Meta{})
	tab.Create(seg(Reply, PA, 5, 6, 10), t0, Meta{})
	tab.Create(udp(cliAddr, srvAddr, 9, 9, 0), t0-10*sec, Meta{})
	tab.Expire(t0)
	if err := tab.WriteSnapshot(&buf, t0); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(snapMagic))
	f.Add([]byte("KSCT\x01\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := New(Config{Shards: 2, PerSourceConns: 3})
		if err := tab.ReadSnapshot(bytes.NewReader(data), t0); err != nil {
			if tab.Len() != 0 {
				t.Fatalf("failed read left %d connections", tab.Len())
			}
			return
		}
		checkInvariants(t, tab)
		// What was read writes back and reads again to the same table size.
		var out bytes.Buffer
		if err := tab.WriteSnapshot(&out, t0); err != nil {
			t.Fatal(err)
		}
		again := New(Config{Shards: 4, TombstoneCap: 64})
		if err := again.ReadSnapshot(&out, t0+sec); err != nil {
			t.Fatalf("re-reading a written snapshot: %v", err)
		}
		if again.Len() != tab.Len() {
			t.Fatalf("re-read %d connections of %d", again.Len(), tab.Len())
		}
		// Restored connections keep working.
		for _, p := range []*packet.Parsed{seg(Original, A, c1, s1, 0), udp(srvAddr, cliAddr, 53, 1, 0)} {
			again.Track(p, t0+2*sec)
		}
		again.Expire(t0 + int64(48*time.Hour))
		checkInvariants(t, again)
	})
}

var fuzzAddrs = [2][3]netip.Addr{
	{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
	{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::3")},
}

var fuzzICMPTypes = [2][6]uint8{{8, 0, 3, 11, 13, 5}, {128, 129, 1, 3, 135, 2}}

// fuzzPacket builds a packet from 8 bytes: endpoints, protocol, flags, sequence and
// ack near plausible values (so handshakes and windows are actually exercised),
// payload, fragment position.
func fuzzPacket(op []byte) *packet.Parsed {
	fam := int(op[1] >> 7)
	src, dst := fuzzAddrs[fam][op[1]%3], fuzzAddrs[fam][(op[1]>>2)%3]
	p := &packet.Parsed{IPVersion: uint8(4 + 2*fam), Src: src, Dst: dst, IPID: uint32(op[6] >> 6)}
	dir := 0
	if src.Less(dst) {
		dir = 1
	}
	isn := [2]uint32{cliISN, srvISN}
	switch op[2] % 6 {
	case 0, 1, 2:
		p.Proto = packet.ProtoTCP
		p.SrcPort, p.DstPort = 1000+uint16(op[1]>>4&1), 80
		if dir == 1 {
			p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
		}
		p.TCPFlags = packet.TCPFlags(op[3])
		p.Seq = isn[dir] + uint32(op[4])*97 - 200
		p.Ack = isn[1-dir] + uint32(op[5])*97 - 200
		p.Window = uint16(op[5]) << 8
		p.PayloadLen = int(op[6]&0x3f) * 50
		if op[4]&1 == 1 {
			p.TCPOpts = packet.TCPOptions{HasWScale: true, WScale: op[5] & 15, SACKPermitted: true,
				NumSACK: op[3] & 3, SACK: [4]packet.SACKBlock{{Left: p.Ack, Right: p.Ack + uint32(op[6])*100}}}
		}
	case 3:
		p.Proto = packet.ProtoUDP
		p.SrcPort, p.DstPort = 53+uint16(op[3]&1), 53+uint16(op[3]>>1&1)
		p.PayloadLen = int(op[6])
	case 4:
		p.Proto = packet.ProtoICMP
		if fam == 1 {
			p.Proto = packet.ProtoICMPv6
		}
		p.ICMPType = fuzzICMPTypes[fam][op[3]%6]
		p.ICMPID = uint16(op[4] & 1)
		p.Inner = packet.Inner{Valid: op[5]&1 == 0, Src: dst, Dst: src, Proto: packet.Proto([]uint8{6, 17, uint8(p.Proto)}[op[5]>>1%3]),
			SrcPort: 80, DstPort: 1000 + uint16(op[5]>>3&1), ID: uint16(op[4] & 1), ICMPType: fuzzICMPTypes[fam][op[5]>>4%2]}
	default:
		p.Proto = packet.Proto(47 + op[3]&1)
	}
	switch op[6] >> 6 {
	case 1:
		p.Frag = packet.FirstFragment
	case 2:
		p.Frag = packet.LaterFragment
	}
	p.IPLen = 40 + p.PayloadLen
	return p
}

// FuzzTrackSequence feeds random packet sequences, with Create, Expire, CloseIf,
// Reconfigure and snapshots mixed in, and checks the table's invariants after each.
func FuzzTrackSequence(f *testing.F) {
	f.Add([]byte{0,
		5, 0x04, 0, byte(S), 2, 0, 0, 0,
		5, 0x01, 0, byte(SA), 2, 3, 0, 0,
		5, 0x04, 0, byte(A), 3, 3, 0, 0,
		5, 0x04, 0, byte(PA), 3, 3, 2, 0,
		5, 0x01, 0, byte(FA), 3, 5, 0, 200,
		0, 0, 0, 0, 0, 0, 0, 255})
	f.Add([]byte{1,
		5, 0x04, 3, 0, 0, 0, 5, 0,
		5, 0x01, 3, 0, 0, 0, 5, 0,
		6, 0x04, 4, 0, 0, 0, 0, 0,
		6, 0x01, 4, 2, 0, 0, 0, 0,
		7, 0x04, 5, 0, 0, 0, 0x40, 0,
		7, 0x04, 5, 0, 0, 0, 0x80, 0})
	f.Add([]byte{2, 4, 0x84, 1, byte(A), 9, 9, 9, 9, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 9})
	f.Fuzz(fuzzSequence)
}

func fuzzSequence(t *testing.T, data []byte) {
	{
		if len(data) == 0 {
			return
		}
		cfg := Config{Strict: data[0]&1 == 1, MaxConns: 6, Shards: 2, TombstoneCap: 8,
			Timeouts: Timeouts{TCPEstablished: time.Hour, TCPPickup: time.Minute}}
		if data[0]&2 != 0 {
			cfg.PerSourceConns, cfg.PerSourceRate = 3, 5
		}
		if data[0]&4 != 0 {
			cfg.AdaptiveStart, cfg.AdaptiveEnd = 3, 8
		}
		ended := 0
		cfg.OnEnd = func(ConnInfo, EndCause) { ended++ }
		tab := New(cfg)
		now := t0
		for data = data[1:]; len(data) >= 8; data = data[8:] {
			op := data[:8]
			now += int64(op[7]) * int64(op[7]) * int64(time.Second) / 8
			switch op[0] % 12 {
			case 0:
				tab.Expire(now)
			case 1:
				tab.CloseIf(func(ci *ConnInfo) bool { return ci.ID%3 == uint64(op[1]%3) }, EndCause(1+op[2]%6))
			case 2:
				var buf bytes.Buffer
				if err := tab.WriteSnapshot(&buf, now); err != nil {
					t.Fatal(err)
				}
				other := New(Config{Shards: 1, TombstoneCap: 8})
				if err := other.ReadSnapshot(&buf, now); err != nil || other.Len() != tab.Len() {
					t.Fatalf("snapshot: %v, %d of %d", err, other.Len(), tab.Len())
				}
			case 3:
				cfg.Strict = !cfg.Strict
				tab.Reconfigure(cfg)
			default:
				p := fuzzPacket(op)
				r := tab.Track(p, now)
				checkResult(t, r)
				if r.Verdict == NewConn && op[0]&0x80 == 0 {
					// As the engine does: the table's suggested direction, or
					// (rules permitting only the other way round) Reply.
					as := r.Dir
					if op[0]&0x40 != 0 {
						as = Reply
					}
					r = tab.CreateAs(p, now, Meta{Rule: uint32(op[0])}, as)
					checkResult(t, r)
					if r.Verdict == NewConn {
						t.Fatalf("Create answered new")
					}
				}
			}
			if tab.Len() > 6 {
				t.Fatalf("len %d above MaxConns", tab.Len())
			}
			checkInvariants(t, tab)
		}
		st := tab.Stats()
		if gone := st.Expired + st.Closed + st.Evicted + st.Flushed + st.Reopened; st.Created != gone+uint64(tab.Len()) || uint64(ended) != gone {
			t.Fatalf("created %d, ended %d (OnEnd %d), live %d", st.Created, gone, ended, tab.Len())
		}
	}
}

func checkResult(t *testing.T, r Result) {
	t.Helper()
	switch r.Verdict {
	case Accept, NewConn:
		if r.Reason != reason.None {
			t.Fatalf("%v with reason %v", r.Verdict, r.Reason)
		}
	case Drop:
		if r.Reason == reason.None {
			t.Fatalf("drop without a reason: %+v", r)
		}
	default:
		t.Fatalf("invalid verdict %d", r.Verdict)
	}
	if r.State >= numStates {
		t.Fatalf("state %d", r.State)
	}
}
