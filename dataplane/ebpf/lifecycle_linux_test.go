//go:build linux

package ebpf

import (
	"net/netip"
	"testing"
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/reason"
	"keepstate/synth"
)

// handOver opens a connection through the table k, hands it to f and returns
// the conversation.
func handOver(t *testing.T, k *conntrack.Table, f *FastPath, port uint16) *synth.Conv {
	t.Helper()
	c := synth.NewConv(netip.AddrPortFrom(netip.MustParseAddr("10.1.0.2"), port), netip.MustParseAddrPort("10.2.0.2:5432"), uint32(port))
	now := time.Now().UnixNano()
	for _, seg := range [][]byte{
		c.Segment(synth.FromClient, packet.SYN, 0), c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(synth.FromClient, packet.ACK, 0), c.Segment(synth.FromClient, packet.ACK|packet.PSH, 10),
		c.Segment(synth.FromServer, packet.ACK|packet.PSH, 10),
	} {
		var p packet.Parsed
		if err := p.Decode(seg, packet.LinkRaw); err != nil {
			t.Fatal(err)
		}
		if v := decide(k, &p, now); v != conntrack.Accept {
			t.Fatalf("handshake packet refused: %v", v)
		}
		_, d := lookup(k, &p)
		f.Offer(&p, d, testIfindex, now)
	}
	if f.Stats().Offloaded != 1 {
		t.Fatalf("connection not handed over: %+v", f.Stats())
	}
	return c
}

func kernelAccepts(t *testing.T, f *FastPath, seg []byte) bool {
	t.Helper()
	return run(t, f, packet.AppendEthernet(nil, macA, macB, nil, seg)) == MarkAccept
}

// An offloaded connection kept busy in the kernel does not expire in the table;
// once idle for its timeout it does, exactly, with its kernel-side counters, and
// the probe after it is refused as state_expired with its idle time (the
// keep-alive story).
func TestOffloadedIdleTimeout(t *testing.T) {
	cfg := conntrack.DefaultConfig()
	cfg.Timeouts.TCPEstablished = 1500 * time.Millisecond
	cfg.Timeouts.TCPUnacked = 1500 * time.Millisecond
	k := conntrack.New(cfg)
	f := loadForTest(t, k)
	c := handOver(t, k, f, 41000)

	for range 4 { // 2 s of traffic in the kernel, longer than the timeout
		time.Sleep(500 * time.Millisecond)
		if !kernelAccepts(t, f, c.Segment(synth.FromClient, packet.ACK|packet.PSH, 100)) ||
			!kernelAccepts(t, f, c.Segment(synth.FromServer, packet.ACK, 0)) {
			t.Fatal("the kernel gave up a packet of a busy offloaded connection")
		}
		k.Expire(time.Now().UnixNano())
	}
	if k.Len() != 1 || f.Stats().Offloaded != 1 {
		t.Fatalf("a busy offloaded connection expired: %d in the table, %+v", k.Len(), f.Stats())
	}
	var info conntrack.ConnInfo
	k.Range(func(ci conntrack.ConnInfo) bool { info = ci; return true })
	if info.Packets != [2]uint64{7, 6} {
		t.Errorf("packets %v, want [7 6] (3 + 4 in the kernel, 2 + 4)", info.Packets)
	}

	time.Sleep(1600 * time.Millisecond)
	probe := c.KeepAlive(synth.FromClient)
	if kernelAccepts(t, f, probe) {
		t.Fatal("the kernel accepted a packet after the idle timeout")
	}
	if n := k.Expire(time.Now().UnixNano()); n != 1 || f.Stats().Offloaded != 0 {
		t.Fatalf("idle offloaded connection: %d expired, %+v", n, f.Stats())
	}
	var p packet.Parsed
	if err := p.Decode(probe, packet.LinkRaw); err != nil {
		t.Fatal(err)
	}
	r := k.Track(&p, time.Now().UnixNano())
	if r.Verdict != conntrack.Drop || r.Reason != reason.StateExpired || r.Idle < 1500*time.Millisecond || r.Idle > 1700*time.Millisecond {
		t.Errorf("probe after the timeout: %v %v, idle %v (want state_expired after about 1.5 s)", r.Verdict, r.Reason, r.Idle)
	}
}

// A new configuration takes every connection back (the fast path was told the
// old timeouts and options); a rule change that closes a connection takes it out
// of the kernel at once.
func TestOffloadedReconfigureAndClose(t *testing.T) {
	cfg := conntrack.DefaultConfig()
	k := conntrack.New(cfg)
	f := loadForTest(t, k)
	c := handOver(t, k, f, 42000)
	if !kernelAccepts(t, f, c.Segment(synth.FromClient, packet.ACK|packet.PSH, 100)) {
		t.Fatal("not accepted in the kernel")
	}
	k.Reconfigure(cfg)
	if f.Stats().Offloaded != 0 {
		t.Fatalf("Reconfigure left %d connections in the kernel", f.Stats().Offloaded)
	}
	var info conntrack.ConnInfo
	k.Range(func(ci conntrack.ConnInfo) bool { info = ci; return true })
	if info.Packets[conntrack.Original] != 4 {
		t.Errorf("counters after taking back: %v", info.Packets)
	}

	c = handOver(t, k, f, 43000)
	if n := k.CloseIf(func(ci *conntrack.ConnInfo) bool { return ci.SrcPort == 43000 }, conntrack.EndRuleChanged); n != 1 {
		t.Fatalf("CloseIf closed %d", n)
	}
	if f.Stats().Offloaded != 0 || kernelAccepts(t, f, c.Segment(synth.FromClient, packet.ACK|packet.PSH, 100)) {
		t.Fatal("a connection closed by a rule change is still accepted in the kernel")
	}
}
