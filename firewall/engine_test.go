package firewall

import (
	"net/netip"
	"testing"
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
	"keepstate/synth"
)

var (
	lanNet = netip.MustParsePrefix("10.1.0.0/24")
	dmzNet = netip.MustParsePrefix("10.2.0.0/24")
	web    = netip.MustParseAddrPort("10.1.0.2:40000")
	tomcat = netip.MustParseAddrPort("10.2.0.2:8080")
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// testModel: LAN (web) and DMZ (Tomcat); web may reach Tomcat on 8080; Tomcat may
// not open connections to LAN (Deny); everything else hits the default rule (Drop).
func testModel() policy.Model {
	return policy.Model{
		Interfaces: []policy.Interface{
			{ID: 1, Name: "LAN", Group: policy.Trusted, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
			{ID: 2, Name: "DMZ", Group: policy.Other, Addresses: []netip.Prefix{netip.MustParsePrefix("10.2.0.1/24")}},
			{ID: 3, Name: "WAN", Group: policy.Internet},
		},
		Services: []policy.Service{{ID: 1, Name: "Tomcat", Protocol: policy.ProtoTCP, Ports: []policy.PortRange{{Lo: 8080, Hi: 8080}}}},
		Rules: []policy.Rule{
			{ID: 10, Name: "Web to Tomcat", Enabled: true, Source: []policy.Term{policy.PrefixTerm(lanNet)},
				Destination: []policy.Term{policy.PrefixTerm(dmzNet)}, Services: []string{"Tomcat"}, Action: policy.Permit, LogConnections: true},
			{ID: 20, Name: "Tomcat must not call LAN", Enabled: true, Source: []policy.Term{policy.Iface("DMZ")},
				Destination: []policy.Term{policy.Iface("LAN")}, Action: policy.Deny},
		},
		DefaultAction: policy.Drop,
	}
}

func compileModel(t testing.TB, m policy.Model) *policy.Ruleset {
	t.Helper()
	rs, err := policy.Compile(&m)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// unlimited are the default settings without the per-source limits and adaptive
// timeouts, for tests and benchmarks that open many connections from few sources.
func unlimited() Settings {
	s := DefaultSettings()
	s.Conntrack.PerSourceConns, s.Conntrack.PerSourceRate = 0, 0
	s.Conntrack.AdaptiveStart, s.Conntrack.AdaptiveEnd = 0, 0
	return s
}

func tcp(src, dst netip.AddrPort, flags packet.TCPFlags, seq, ack uint32) []byte {
	s := packet.TCPSpec{Src: src, Dst: dst, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
	if flags&packet.SYN != 0 {
		s.Options = packet.TCPOptions{MSS: 1460, HasMSS: true}
	}
	return packet.AppendTCP(nil, s)
}

func newEngine(t *testing.T, m policy.Model, s Settings, onEnd func(ConnEnd)) *Engine {
	t.Helper()
	e, err := New(compileModel(t, m), s, Options{OnConnEnd: onEnd})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPipelineReasons(t *testing.T) {
	e := newEngine(t, testModel(), DefaultSettings(), nil)
	lan, dmz := 0, 1
	var p packet.Parsed
	decide := func(b []byte, in int) Decision { return e.Decide(b, packet.LinkRaw, in, t0, &p) }

	tests := []struct {
		name   string
		frame  []byte
		in     int
		action Action
		reason reason.Reason
		rule   int
	}{
		{"syn permitted by rule", tcp(web, tomcat, packet.SYN, 100, 0), lan, Accept, reason.None, 0},
		{"mid-stream ack without connection", tcp(netip.MustParseAddrPort("10.1.0.3:40001"), tomcat, packet.ACK, 5, 6), lan, Drop, reason.HandshakeNotCompleted, NoRule},
		{"deny rule answers", tcp(tomcat, netip.MustParseAddrPort("10.1.0.9:22"), packet.SYN, 1, 0), dmz, Reject, reason.TrafficRule, 1},
		{"default rule drops", tcp(web, netip.MustParseAddrPort("10.2.0.2:22"), packet.SYN, 1, 0), lan, Drop, reason.DefaultRule, DefaultRule},
		{"spoofed source on LAN", tcp(netip.MustParseAddrPort("10.2.0.7:1234"), tomcat, packet.SYN, 1, 0), lan, Drop, reason.AntiSpoofing, NoRule},
		{"garbage", []byte{0x45, 0x00, 0x00}, lan, Drop, reason.Malformed, NoRule},
		{"unknown ingress is inferred, not spoof-checked", tcp(netip.MustParseAddrPort("10.1.0.4:40002"), tomcat, packet.SYN, 1, 0), -1, Accept, reason.None, 0},
	}
	for _, tc := range tests {
		d := decide(tc.frame, tc.in)
		if d.Action != tc.action || d.Reason != tc.reason || d.Rule != tc.rule {
			t.Errorf("%s: got %v/%v rule %d, want %v/%v rule %d", tc.name, d.Action, d.Reason, d.Rule, tc.action, tc.reason, tc.rule)
		}
	}
	c := e.Counters()
	if c.Accepted != 2 || c.Dropped[reason.HandshakeNotCompleted] != 1 || c.Dropped[reason.TrafficRule] != 1 ||
		c.Dropped[reason.DefaultRule] != 1 || c.Dropped[reason.AntiSpoofing] != 1 || c.Dropped[reason.Malformed] != 1 {
		t.Errorf("counters = %+v", c)
	}
}

func TestUnsupportedLinkPayload(t *testing.T) {
	e := newEngine(t, testModel(), DefaultSettings(), nil)
	arp := packet.AppendEthernetType(nil, [6]byte{1}, [6]byte{2}, nil, 0x0806, make([]byte, 28))
	var p packet.Parsed
	d := e.Decide(arp, packet.LinkEthernet, -1, t0, &p)
	if d.Action != Drop || d.Reason != reason.Unsupported || d.DecodeErr == nil {
		t.Errorf("ARP: %v/%v err %v, want drop/unsupported with the decode error", d.Action, d.Reason, d.DecodeErr)
	}
}

// A full handshake through the engine, then a configuration that no longer permits
// the connection: Apply closes it, OnConnEnd sees why, and its next packet is
// refused.
func TestApplyClosesRefusedConnections(t *testing.T) {
	var ends []ConnEnd
	e := newEngine(t, testModel(), DefaultSettings(), func(c ConnEnd) { ends = append(ends, c) })
	var p packet.Parsed
	steps := []struct {
		b  []byte
		in int
	}{
		{tcp(web, tomcat, packet.SYN, 100, 0), 0},
		{tcp(tomcat, web, packet.SYN|packet.ACK, 500, 101), 1},
		{tcp(web, tomcat, packet.ACK, 101, 501), 0},
	}
	for i, s := range steps {
		if d := e.Decide(s.b, packet.LinkRaw, s.in, t0+int64(i), &p); d.Action != Accept {
			t.Fatalf("handshake step %d: %v %v", i, d.Action, d.Reason)
		}
	}
	if n := e.Table().Len(); n != 1 {
		t.Fatalf("table holds %d connections, want 1", n)
	}

	// An Apply that fails changes nothing.
	if _, err := e.Apply(nil, DefaultSettings()); err == nil {
		t.Fatal("Apply accepted no ruleset")
	}
	if e.Table().Len() != 1 || e.Ruleset().Rule(0).Name != "Web to Tomcat" {
		t.Fatal("a failed Apply changed the engine")
	}

	// Keeping the rule keeps the connection.
	if closed, err := e.Apply(compileModel(t, testModel()), DefaultSettings()); err != nil || closed != 0 {
		t.Fatalf("Apply of the same rules: closed %d, %v", closed, err)
	}

	stricter := testModel()
	stricter.Rules[0].Enabled = false
	closed, err := e.Apply(compileModel(t, stricter), DefaultSettings())
	if err != nil || closed != 1 {
		t.Fatalf("Apply: closed %d, err %v; want 1, nil", closed, err)
	}
	if len(ends) != 1 || ends[0].Cause != conntrack.EndRuleChanged || !ends[0].Log || ends[0].Rule == nil || ends[0].Rule.Name != "Web to Tomcat" {
		t.Fatalf("OnConnEnd saw %+v", ends)
	}
	if d := e.Decide(tcp(web, tomcat, packet.ACK|packet.PSH, 101, 501), packet.LinkRaw, 0, t0+10, &p); d.Action == Accept {
		t.Error("a packet of the closed connection was accepted")
	}
}

// The established path must not allocate: it runs for every packet.
func TestEstablishedPathDoesNotAllocate(t *testing.T) {
	e := newEngine(t, testModel(), DefaultSettings(), nil)
	var p packet.Parsed
	for i, s := range [][]byte{
		tcp(web, tomcat, packet.SYN, 100, 0),
		tcp(tomcat, web, packet.SYN|packet.ACK, 500, 101),
		tcp(web, tomcat, packet.ACK, 101, 501),
	} {
		if d := e.Decide(s, packet.LinkRaw, -1, t0+int64(i), &p); d.Action != Accept {
			t.Fatalf("handshake step %d: %v", i, d.Reason)
		}
	}
	ack := tcp(web, tomcat, packet.ACK, 101, 501)
	now := t0 + 100
	allocs := testing.AllocsPerRun(1000, func() {
		now++
		if d := e.Decide(ack, packet.LinkRaw, 0, now, &p); d.Action != Accept {
			t.Fatalf("established ACK: %v", d.Reason)
		}
	})
	if allocs != 0 {
		t.Errorf("established path: %v allocations per packet, want 0", allocs)
	}

	b := new(Batch)
	allocs = testing.AllocsPerRun(100, func() {
		for !b.Full() {
			now++
			b.Add(ack, packet.LinkRaw, 0, now)
		}
		e.DecideBatch(b)
		for j := range b.Len() {
			if d := &b.Decisions[j]; d.Action != Accept {
				t.Fatalf("established ACK in a batch: %v", d.Reason)
			}
		}
		b.Reset()
	})
	if allocs != 0 {
		t.Errorf("established path in batches: %v allocations per batch of %d, want 0", allocs, BatchSize)
	}
}

// A first fragment too short to hold a TCP header is a fragment attack, not noise.
func TestTinyFragmentReason(t *testing.T) {
	e := newEngine(t, testModel(), DefaultSettings(), nil)
	full := tcp(web, tomcat, packet.SYN, 1, 0)
	// Keep 8 bytes of TCP header and mark the packet as a first fragment (MF set).
	frag := append([]byte(nil), full[:28]...)
	frag[2], frag[3] = 0, 28
	frag[6] = 0x20
	frag[10], frag[11] = 0, 0
	var p packet.Parsed
	d := e.Decide(frag, packet.LinkRaw, 0, t0, &p)
	if d.Action != Drop || d.Reason != reason.Fragment {
		t.Errorf("tiny first fragment: %v/%v (%v), want drop/fragment", d.Action, d.Reason, d.DecodeErr)
	}
}

// Loose mode picks up a connection from whichever side the firewall hears first,
// and asks the rules about the direction the connection was opened in: Tomcat's
// replies to web servers are the permitted "Web to Tomcat" connection, not a
// connection Tomcat opens (which the Deny rule would refuse).
func TestLoosePickupOrientation(t *testing.T) {
	s := DefaultSettings()
	s.Conntrack.Strict = false
	e := newEngine(t, testModel(), s, nil)
	var p packet.Parsed
	lan, dmz := 0, 1

	d := e.Decide(tcp(tomcat, web, packet.SYN|packet.ACK, 500, 101), packet.LinkRaw, dmz, t0, &p)
	if d.Action != Accept || !d.Created || d.Conn.Dir != conntrack.Reply || d.Rule != 0 {
		t.Fatalf("SYN-ACK pickup: %v/%v created %v dir %v rule %d; want accepted as reply under rule 0", d.Action, d.Reason, d.Created, d.Conn.Dir, d.Rule)
	}
	var ci conntrack.ConnInfo
	e.Table().Range(func(c conntrack.ConnInfo) bool { ci = c; return false })
	if ci.Src != web.Addr() || ci.SrcPort != web.Port() {
		t.Errorf("connection originates at %v:%d, want the web server", ci.Src, ci.SrcPort)
	}

	// A mid-stream segment from Tomcat's service port: only the reverse is permitted.
	other := netip.MustParseAddrPort("10.1.0.3:40100")
	d = e.Decide(tcp(tomcat, other, packet.ACK|packet.PSH, 9000, 7000), packet.LinkRaw, dmz, t0+1, &p)
	if d.Action != Accept || d.Conn.Dir != conntrack.Reply {
		t.Errorf("mid-stream reply pickup: %v/%v dir %v", d.Action, d.Reason, d.Conn.Dir)
	}
	// A mid-stream segment from the web server: permitted as seen.
	third := netip.MustParseAddrPort("10.1.0.4:40200")
	d = e.Decide(tcp(third, tomcat, packet.ACK, 100, 200), packet.LinkRaw, lan, t0+2, &p)
	if d.Action != Accept || d.Conn.Dir != conntrack.Original {
		t.Errorf("mid-stream original pickup: %v/%v dir %v", d.Action, d.Reason, d.Conn.Dir)
	}
	// Neither way permitted: the rule that matches as seen decides (the Deny).
	d = e.Decide(tcp(netip.MustParseAddrPort("10.2.0.2:22"), netip.MustParseAddrPort("10.1.0.5:50000"), packet.ACK, 1, 1), packet.LinkRaw, dmz, t0+3, &p)
	if d.Action != Reject || d.Reason != reason.TrafficRule || d.Rule != 1 {
		t.Errorf("unpermitted pickup: %v/%v rule %d, want reject by rule 1", d.Action, d.Reason, d.Rule)
	}
}

// A TSO or BIG TCP send captured before the NIC cut it (IP length 0, longer than
// 64 KiB) is tracked with its real length: the receiver's acknowledgement of all of
// it passes the window check.
func TestSegmentationOffloadSend(t *testing.T) {
	e := newEngine(t, testModel(), DefaultSettings(), nil)
	var p packet.Parsed
	const big = 100_000
	frames := synth.OffloadedSend(web, tomcat, big)
	names := []string{"SYN", "SYN-ACK", "ACK", "100 000-byte send", "its acknowledgement"}
	for i, frame := range frames {
		d := e.Decide(frame, packet.LinkRaw, -1, t0+int64(i), &p)
		if d.Action != Accept {
			t.Fatalf("%s: %v (%v)", names[i], d.Reason, d.DecodeErr)
		}
	}
	if err := p.Decode(frames[3], packet.LinkRaw); err != nil || !p.IPLenFromWire || p.PayloadLen != big {
		t.Fatalf("the send decodes as %d bytes (from the wire length %v, %v)", p.PayloadLen, p.IPLenFromWire, err)
	}
}
