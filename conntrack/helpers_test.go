package conntrack

import (
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// t0 is the fake clock's start: 2012-09-23 11:50:42 UTC, the first story's log line.
const t0 = int64(1348401042) * int64(time.Second)

var (
	cliAddr = netip.MustParseAddr("192.168.1.140")
	srvAddr = netip.MustParseAddr("10.1.2.3")
	cli6    = netip.MustParseAddr("2001:db8::1")
	srv6    = netip.MustParseAddr("2001:db8::2")
)

const (
	cliPort = 40000
	srvPort = 1521
	cliISN  = 1000
	srvISN  = 500000
)

// seg builds a TCP segment between the test client and server. dir Original is
// client to server.
func seg(dir Dir, flags packet.TCPFlags, seq, ack uint32, payload int) *packet.Parsed {
	p := &packet.Parsed{
		IPVersion: 4, Proto: packet.ProtoTCP, TCPFlags: flags, Seq: seq, Ack: ack,
		Window: 65535, PayloadLen: payload, IPLen: 40 + payload,
		Src: cliAddr, Dst: srvAddr, SrcPort: cliPort, DstPort: srvPort,
	}
	if dir == Reply {
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
	return p
}

func udp(src, dst netip.Addr, sport, dport uint16, n int) *packet.Parsed {
	return &packet.Parsed{IPVersion: 4, Proto: packet.ProtoUDP, Src: src, Dst: dst,
		SrcPort: sport, DstPort: dport, PayloadLen: n, IPLen: 28 + n}
}

func echo(src, dst netip.Addr, typ uint8, id uint16) *packet.Parsed {
	return &packet.Parsed{IPVersion: 4, Proto: packet.ProtoICMP, Src: src, Dst: dst,
		ICMPType: typ, ICMPID: id, IPLen: 84}
}

const (
	S  = packet.SYN
	A  = packet.ACK
	F  = packet.FIN
	R  = packet.RST
	P  = packet.PSH
	SA = packet.SYN | packet.ACK
	FA = packet.FIN | packet.ACK
	PA = packet.PSH | packet.ACK
	RA = packet.RST | packet.ACK
)

// step is one packet of a scenario and what the table must answer.
type step struct {
	p       *packet.Parsed
	at      time.Duration // after t0
	verdict Verdict
	reason  reason.Reason
	state   State // checked when verdict is Accept
}

// run feeds the steps to tab, calling Create with Meta{Rule: 7} whenever Track
// answers NewConn and the step expects Accept.
func run(t *testing.T, tab *Table, steps []step) []Result {
	t.Helper()
	var out []Result
	for n, st := range steps {
		now := t0 + int64(st.at)
		r := tab.Track(st.p, now)
		if r.Verdict == NewConn && st.verdict != NewConn {
			r = tab.Create(st.p, now, Meta{Rule: 7})
		}
		if r.Verdict != st.verdict || r.Reason != st.reason {
			t.Fatalf("step %d (%v flags %#x seq %d ack %d): got %v/%v, want %v/%v",
				n, st.p.Src, st.p.TCPFlags, st.p.Seq, st.p.Ack, r.Verdict, r.Reason, st.verdict, st.reason)
		}
		if st.verdict == Accept && r.State != st.state {
			t.Fatalf("step %d: state %v, want %v", n, r.State, st.state)
		}
		out = append(out, r)
	}
	return out
}

// handshake is the three packets that establish the test connection; data then
// starts at cliISN+1 and srvISN+1.
func handshake() []step {
	return []step{
		{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
		{p: seg(Reply, SA, srvISN, cliISN+1, 0), verdict: Accept, state: StateSynRecv},
		{p: seg(Original, A, cliISN+1, srvISN+1, 0), verdict: Accept, state: StateEstablished},
	}
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func strictTable() *Table { return New(Config{Strict: true}) }
func looseTable() *Table  { return New(Config{Strict: false}) }

// only returns the single connection of tab.
func only(t *testing.T, tab *Table) ConnInfo {
	t.Helper()
	var all []ConnInfo
	tab.Range(func(ci ConnInfo) bool { all = append(all, ci); return true })
	if len(all) != 1 {
		t.Fatalf("table holds %d connections, want 1", len(all))
	}
	return all[0]
}

// sourcesIn returns the source addresses of the connections in tab.
func sourcesIn(tab *Table) map[netip.Addr]bool {
	live := make(map[netip.Addr]bool)
	tab.Range(func(ci ConnInfo) bool {
		live[ci.Src] = true
		return true
	})
	return live
}
