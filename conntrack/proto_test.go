package conntrack

import (
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

func TestUDP(t *testing.T) {
	tab := strictTable()
	q := udp(cliAddr, srvAddr, 5353, 53, 40)
	if r := tab.Track(q, t0); r.Verdict != NewConn {
		t.Fatalf("first UDP packet: %v, want new", r.Verdict)
	}
	r := tab.Create(q, t0, Meta{Rule: 3, Flags: 1})
	if r.Verdict != Accept || r.State != StateUDPUnreplied || r.Dir != Original || r.Meta != (Meta{Rule: 3, Flags: 1}) {
		t.Fatalf("Create: %+v", r)
	}
	if ci := only(t, tab); ci.Timeout != 30*time.Second || ci.Assured {
		t.Fatalf("unreplied: %+v", ci)
	}
	r = tab.Track(udp(srvAddr, cliAddr, 53, 5353, 100), t0+int64(time.Second))
	if r.Verdict != Accept || r.State != StateUDPReplied || r.Dir != Reply || r.Meta.Rule != 3 {
		t.Fatalf("reply: %+v", r)
	}
	got, dir, ok := tab.Lookup(udp(srvAddr, cliAddr, 53, 5353, 0), t0+2*int64(time.Second))
	if !ok || dir != Reply || got.Packets != [2]uint64{1, 1} || got.LastSeen != t0+int64(time.Second) {
		t.Fatalf("Lookup: %+v %v %v", got, dir, ok)
	}
	if _, _, ok := tab.Lookup(udp(srvAddr, cliAddr, 53, 5353, 0), t0+int64(121*time.Second)); ok {
		t.Fatal("Lookup found an expired connection")
	}
	ci := only(t, tab)
	if ci.Timeout != 120*time.Second || !ci.Assured || ci.Packets != [2]uint64{1, 1} || ci.Bytes != [2]uint64{68, 128} {
		t.Fatalf("replied: %+v", ci)
	}
	if ci.Src != cliAddr || ci.Dst != srvAddr || ci.SrcPort != 5353 || ci.DstPort != 53 || ci.Proto != packet.ProtoUDP {
		t.Fatalf("tuple: %+v", ci)
	}
	if ci.Created != t0/1e9*1e9 || ci.LastSeen != t0+int64(time.Second) {
		t.Fatalf("times: created %d last %d", ci.Created, ci.LastSeen)
	}
	// Another source port is another connection.
	if r := tab.Track(udp(cliAddr, srvAddr, 5354, 53, 40), t0); r.Verdict != NewConn {
		t.Fatalf("other port: %v", r.Verdict)
	}
}

func TestIPv6AndFamiliesApart(t *testing.T) {
	tab := strictTable()
	p := udp(cli6, srv6, 1000, 2000, 10)
	p.IPVersion = 6
	if r := tab.Create(p, t0, Meta{}); r.Verdict != Accept {
		t.Fatalf("Create v6: %+v", r)
	}
	back := udp(srv6, cli6, 2000, 1000, 10)
	if r := tab.Track(back, t0); r.Verdict != Accept || r.Dir != Reply {
		t.Fatalf("v6 reply: %+v", r)
	}
	// ::ffff:10.1.2.3 style confusion: a v4 packet with the same low bytes is not it.
	v4 := udp(netip.MustParseAddr("0.0.0.2"), netip.MustParseAddr("0.0.0.1"), 2000, 1000, 10)
	if r := tab.Track(v4, t0); r.Verdict != NewConn {
		t.Fatalf("v4 lookalike: %+v", r)
	}
	if ci := only(t, tab); ci.Src != cli6 || ci.Dst != srv6 {
		t.Fatalf("info: %+v", ci)
	}
}

func TestICMPEcho(t *testing.T) {
	tab := strictTable()
	req := echo(cliAddr, srvAddr, 8, 77)
	if r := tab.Track(req, t0); r.Verdict != NewConn {
		t.Fatalf("echo request: %v", r.Verdict)
	}
	if r := tab.Create(req, t0, Meta{Rule: 1}); r.Verdict != Accept || r.State != StateICMPUnreplied {
		t.Fatalf("Create: %+v", r)
	}
	if r := tab.Track(echo(srvAddr, cliAddr, 0, 77), t0); r.Verdict != Accept || r.Dir != Reply || r.State != StateICMPReplied {
		t.Fatalf("echo reply: %+v", r)
	}
	if r := tab.Track(echo(srvAddr, cliAddr, 0, 78), t0); r.Verdict != Drop || r.Reason != reason.InvalidState {
		t.Fatalf("reply with another id: %+v", r)
	}
	if r := tab.Create(echo(srvAddr, cliAddr, 0, 78), t0, Meta{}); r.Verdict != Drop {
		t.Fatalf("Create from a reply: %+v", r)
	}
	// Informational messages other than echo pass statelessly.
	nd := &packet.Parsed{IPVersion: 6, Proto: packet.ProtoICMPv6, Src: cli6, Dst: srv6, ICMPType: 135}
	if r := tab.Track(nd, t0); r.Verdict != NewConn {
		t.Fatalf("neighbour solicitation: %v", r.Verdict)
	}
	if r := tab.Create(nd, t0, Meta{Rule: 9}); r.Verdict != Accept || r.ID != 0 || tab.Len() != 1 {
		t.Fatalf("stateless Create: %+v, len %d", r, tab.Len())
	}
	// The echo's timeout is ICMP's.
	if n := tab.Expire(t0 + int64(30*time.Second) - 1); n != 0 {
		t.Fatal("expired early")
	}
	if n := tab.Expire(t0 + int64(30*time.Second)); n != 1 {
		t.Fatal("not expired at 30 s")
	}
	if r := tab.Track(echo(srvAddr, cliAddr, 0, 77), t0+int64(31*time.Second)); r.Reason != reason.StateExpired || r.EndedState != StateICMPReplied {
		t.Fatalf("late echo reply: %+v", r)
	}
}

func icmpError(outerSrc, outerDst netip.Addr, in packet.Inner) *packet.Parsed {
	in.Valid = true
	return &packet.Parsed{IPVersion: 4, Proto: packet.ProtoICMP, Src: outerSrc, Dst: outerDst,
		ICMPType: 3, ICMPCode: 4, Inner: in, IPLen: 56}
}

func TestICMPErrors(t *testing.T) {
	tab := strictTable()
	res := run(t, tab, handshake())
	router := netip.MustParseAddr("172.16.0.1")
	tests := []struct {
		name    string
		p       *packet.Parsed
		verdict Verdict
		reason  reason.Reason
		dir     Dir
	}{
		{"frag needed for a client segment", icmpError(router, cliAddr, packet.Inner{
			Src: cliAddr, Dst: srvAddr, Proto: packet.ProtoTCP, SrcPort: cliPort, DstPort: srvPort, Seq: c1}), Accept, 0, Reply},
		{"unreachable for a server segment", icmpError(router, srvAddr, packet.Inner{
			Src: srvAddr, Dst: cliAddr, Proto: packet.ProtoTCP, SrcPort: srvPort, DstPort: cliPort, Seq: s1 - 1}), Accept, 0, Original},
		{"quoted sequence never sent (RFC 5927)", icmpError(router, cliAddr, packet.Inner{
			Src: cliAddr, Dst: srvAddr, Proto: packet.ProtoTCP, SrcPort: cliPort, DstPort: srvPort, Seq: c1 + 1_000_000}), Drop, reason.ICMPUnrelated, 0},
		{"quoted sequence far in the past", icmpError(router, cliAddr, packet.Inner{
			Src: cliAddr, Dst: srvAddr, Proto: packet.ProtoTCP, SrcPort: cliPort, DstPort: srvPort, Seq: c1 + 1<<32 - 100_000}), Drop, reason.ICMPUnrelated, 0},
		{"quote of another port", icmpError(router, cliAddr, packet.Inner{
			Src: cliAddr, Dst: srvAddr, Proto: packet.ProtoTCP, SrcPort: cliPort + 1, DstPort: srvPort}), Drop, reason.ICMPUnrelated, 0},
		{"quote of UDP on the same ports", icmpError(router, cliAddr, packet.Inner{
			Src: cliAddr, Dst: srvAddr, Proto: packet.ProtoUDP, SrcPort: cliPort, DstPort: srvPort}), Drop, reason.ICMPUnrelated, 0},
	}
	for _, tt := range tests {
		r := tab.Track(tt.p, t0)
		if r.Verdict != tt.verdict || r.Reason != tt.reason {
			t.Errorf("%s: %v/%v, want %v/%v", tt.name, r.Verdict, r.Reason, tt.verdict, tt.reason)
		}
		if r.Verdict == Accept && (r.Dir != tt.dir || r.ID != res[0].ID) {
			t.Errorf("%s: dir %v id %d, want %v %d", tt.name, r.Dir, r.ID, tt.dir, res[0].ID)
		}
	}
	invalid := icmpError(router, cliAddr, packet.Inner{})
	invalid.Inner.Valid = false
	if r := tab.Track(invalid, t0); r.Reason != reason.ICMPUnrelated {
		t.Errorf("truncated quote: %+v", r)
	}
	if r := tab.Create(tests[4].p, t0, Meta{}); r.Verdict != Drop || r.Reason != reason.ICMPUnrelated || tab.Len() != 1 {
		t.Errorf("errors never create: %+v", r)
	}
}

func TestOtherProtocol(t *testing.T) {
	tab := strictTable()
	gre := &packet.Parsed{IPVersion: 4, Proto: 47, Src: cliAddr, Dst: srvAddr, IPLen: 100}
	if r := tab.Track(gre, t0); r.Verdict != NewConn {
		t.Fatal(r)
	}
	if r := tab.Create(gre, t0, Meta{}); r.State != StateOtherUnreplied {
		t.Fatal(r)
	}
	back := &packet.Parsed{IPVersion: 4, Proto: 47, Src: srvAddr, Dst: cliAddr, IPLen: 100}
	if r := tab.Track(back, t0); r.Verdict != Accept || r.State != StateOtherReplied || r.Dir != Reply {
		t.Fatal(r)
	}
	if ci := only(t, tab); ci.Timeout != 600*time.Second {
		t.Fatal(ci)
	}
}

func TestFragments(t *testing.T) {
	tab := strictTable()
	first := udp(cliAddr, srvAddr, 5000, 6000, 1472)
	first.Frag, first.MoreFrags, first.IPID = packet.FirstFragment, true, 4242
	r := tab.Track(first, t0)
	if r.Verdict != NewConn {
		t.Fatal(r)
	}
	c := tab.Create(first, t0, Meta{Rule: 5})
	later := &packet.Parsed{IPVersion: 4, Proto: packet.ProtoUDP, Src: cliAddr, Dst: srvAddr,
		Frag: packet.LaterFragment, FragOffset: 1480, IPID: 4242, IPLen: 520}
	if r := tab.Track(later, t0+1); r.Verdict != Accept || r.ID != c.ID || r.Meta.Rule != 5 {
		t.Fatalf("later fragment: %+v", r)
	}
	other := *later
	other.IPID = 4243
	if r := tab.Track(&other, t0+1); r.Verdict != Drop || r.Reason != reason.Fragment {
		t.Fatalf("unmatched later fragment: %+v", r)
	}
	if r := tab.Track(later, t0+int64(fragTTL)); r.Reason != reason.Fragment {
		t.Fatalf("later fragment after the cache TTL: %+v", r)
	}
	// A first fragment that is dropped leaves nothing for its followers.
	bad := seg(Original, 0, 1, 1, 0)
	bad.Frag, bad.IPID = packet.FirstFragment, 99
	tab.Track(bad, t0)
	lt := &packet.Parsed{IPVersion: 4, Proto: packet.ProtoTCP, Src: cliAddr, Dst: srvAddr, Frag: packet.LaterFragment, IPID: 99}
	if r := tab.Track(lt, t0); r.Reason != reason.Fragment {
		t.Fatalf("follower of a dropped first fragment: %+v", r)
	}
	if st := tab.Stats(); st.FragHits != 1 || st.FragMisses != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestNoIPLayer(t *testing.T) {
	tab := strictTable()
	if r := tab.Track(&packet.Parsed{}, t0); r.Verdict != Drop || r.Reason != reason.Unsupported {
		t.Fatal(r)
	}
	if r := tab.Create(&packet.Parsed{}, t0, Meta{}); r.Verdict != Drop {
		t.Fatal(r)
	}
}
