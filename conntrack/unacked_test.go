package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
)

// Established TCP connections flip between the established timeout and the
// shorter one for unacknowledged data with nearly every data packet and its
// acknowledgement, moving between two class lists with slices of different
// lengths. Expiry must stay exact all the same: after Expire(now) a connection is
// in the table if and only if it was seen less than its current timeout ago, 300 s
// with data outstanding and 2 h without, checked against a model of every
// connection through 60 000 random steps, with the lists' order checked as well.
func TestExpireExactWithUnackedFlips(t *testing.T) {
	testExpireExact(t, nil)
}

// The same with rules' idle timeouts (timeout profiles with lists of their own,
// one below the unacknowledged-data timeout so that it caps it), and a Remap
// halfway through that gives every rule another one, as a new configuration does.
func TestExpireExactWithRuleTimeouts(t *testing.T) {
	testExpireExact(t, []time.Duration{0, 30 * time.Minute, 4 * time.Hour, 200 * time.Second})
}

func testExpireExact(t *testing.T, ruleTimeouts []time.Duration) {
	const flows = 150
	unacked, established := 300*time.Second, 2*time.Hour
	tab := New(Config{Strict: true, Shards: 4, Timeouts: Timeouts{TCPUnacked: unacked, TCPEstablished: established}})
	// Flow f's connections are permitted by rule 1+f%rules, whose idle timeout is
	// ruleTimeouts[(f+shift)%rules].
	rules, shift := max(1, len(ruleTimeouts)), 0
	ruleTimeout := func(rule uint32) time.Duration {
		if ruleTimeouts == nil {
			return 0
		}
		return ruleTimeouts[(int(rule)-1+shift)%rules]
	}
	srv := netip.MustParseAddr("192.0.2.80")
	type flow struct {
		alive              bool
		lastSeen           int64
		cli, srv           uint32 // next sequence numbers
		cliData, srvData   bool   // data sent and not acknowledged yet
		cliBytes, srvBytes uint32 // how much
	}
	fl := make([]flow, flows)
	addr := func(f int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(f >> 8), byte(f)}) }
	pkt := func(f int, fromClient bool, flags packet.TCPFlags, seq, ack uint32, n int) *packet.Parsed {
		p := &packet.Parsed{IPVersion: 4, Proto: packet.ProtoTCP, TCPFlags: flags, Seq: seq, Ack: ack,
			Window: 65535, PayloadLen: n, IPLen: 40 + n,
			Src: addr(f), Dst: srv, SrcPort: 40000, DstPort: 443}
		if !fromClient {
			p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		}
		return p
	}
	timeoutOf := func(f int, x *flow) int64 {
		est := established
		if rt := ruleTimeout(uint32(1 + f%rules)); rt > 0 {
			est = rt
		}
		if x.cliData || x.srvData {
			return int64(min(unacked, est))
		}
		return int64(est)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).UnixNano()
	send := func(step, f int, p *packet.Parsed) {
		t.Helper()
		r := tab.Track(p, now)
		if r.Verdict == NewConn {
			rule := uint32(1 + f%rules)
			r = tab.Create(p, now, Meta{Rule: rule, IdleTimeout: ruleTimeout(rule)})
		}
		if r.Verdict != Accept {
			t.Fatalf("step %d: %v:%d > %v:%d flags %v: %v %v", step, p.Src, p.SrcPort, p.Dst, p.DstPort, p.TCPFlags, r.Verdict, r.Reason)
		}
	}
	for step := range 60000 {
		now += rng.Int64N(int64(40 * time.Second))
		// A few chatty connections get most packets, the rest sit idle for long
		// stretches: both kinds share the lists, which is where order matters.
		f := rng.IntN(flows)
		if rng.IntN(10) < 7 {
			f = rng.IntN(flows / 10)
		}
		x := &fl[f]
		if ruleTimeouts != nil && step == 30000 {
			// A new configuration: every rule takes the next rule's timeout.
			shift = 1
			tab.Remap(func(m Meta) Meta {
				if m.Rule != 0 {
					m.IdleTimeout = ruleTimeout(m.Rule)
				}
				return m
			})
			checkInvariants(t, tab)
		}
		if x.alive && now-x.lastSeen >= timeoutOf(f, x) {
			x.alive = false // the table must refuse its next packet; the test opens anew instead
		}
		if !x.alive {
			isn, sisn := rng.Uint32(), rng.Uint32()
			send(step, f, pkt(f, true, packet.SYN, isn, 0, 0))
			send(step, f, pkt(f, false, packet.SYN|packet.ACK, sisn, isn+1, 0))
			send(step, f, pkt(f, true, packet.ACK, isn+1, sisn+1, 0))
			*x = flow{alive: true, lastSeen: now, cli: isn + 1, srv: sisn + 1}
		} else {
			switch ev := rng.IntN(4); {
			case ev == 0 && x.cliBytes < 30000: // client data, acknowledging the server's
				n := 1 + rng.IntN(1400)
				send(step, f, pkt(f, true, packet.ACK|packet.PSH, x.cli, x.srv, n))
				x.cli += uint32(n)
				x.cliData, x.cliBytes = true, x.cliBytes+uint32(n)
				x.srvData, x.srvBytes = false, 0
			case ev == 1 && x.srvBytes < 30000: // server data, acknowledging the client's
				n := 1 + rng.IntN(1400)
				send(step, f, pkt(f, false, packet.ACK|packet.PSH, x.srv, x.cli, n))
				x.srv += uint32(n)
				x.srvData, x.srvBytes = true, x.srvBytes+uint32(n)
				x.cliData, x.cliBytes = false, 0
			case ev == 2: // the server acknowledges everything
				send(step, f, pkt(f, false, packet.ACK, x.srv, x.cli, 0))
				x.cliData, x.cliBytes = false, 0
			default: // the client acknowledges everything
				send(step, f, pkt(f, true, packet.ACK, x.cli, x.srv, 0))
				x.srvData, x.srvBytes = false, 0
			}
			x.lastSeen = now
		}

		if step%5 != 0 {
			continue
		}
		tab.Expire(now)
		live := sourcesIn(tab)
		for g := range fl {
			y := &fl[g]
			want := y.alive && now-y.lastSeen < timeoutOf(g, y)
			if live[addr(g)] != want {
				t.Fatalf("step %d: flow %d idle %v with data outstanding %v: in table %v, want %v",
					step, g, time.Duration(now-y.lastSeen), y.cliData || y.srvData, live[addr(g)], want)
			}
			y.alive = want
		}
		if step%100 == 0 {
			checkInvariants(t, tab)
		}
	}
	st := tab.Stats()
	t.Logf("%d connections opened, %d expired", st.Created, st.Expired)
	if st.Expired < 100 {
		t.Errorf("only %d connections expired: the test does not exercise expiry", st.Expired)
	}
	checkInvariants(t, tab)
}
