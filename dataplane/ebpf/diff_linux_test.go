//go:build linux

package ebpf

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"keepstate/capture"
	"keepstate/conntrack"
	"keepstate/internal/testcorpus"
	"keepstate/packet"
	"keepstate/synth"
)

// maxTestRunFrame is the largest frame BPF_PROG_TEST_RUN takes for a TC program
// (one page less the skb's head and tail room); larger corpus packets are left out.
const maxTestRunFrame = 3500

// testIfindex is the ingress interface the test runs give the program.
const testIfindex = 1

// loadForTest loads the program, or skips when this machine cannot (not root,
// no BPF): CI runs as root.
func loadForTest(t testing.TB, table *conntrack.Table) *FastPath {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the fast path's tests load an eBPF program: they need root (CI runs them as root)")
	}
	f, err := Load(Options{Table: table, MaxConns: 1024})
	if err != nil {
		t.Skipf("this kernel does not load the fast path: %v", err)
	}
	table.SetOffloader(f) // as Attach does, without attaching anywhere
	t.Cleanup(func() { f.Close() })
	return f
}

// skbCtx is struct __sk_buff as BPF_PROG_TEST_RUN takes it: 48 32-bit words, of
// which the test sets the ingress interface (word 9) and reads the mark (word 2).
type skbCtx [48]uint32

// run runs the program on the Ethernet frame and returns the mark it set.
func run(t testing.TB, f *FastPath, frame []byte) uint32 {
	t.Helper()
	if len(frame) < 60 {
		// As a NIC delivers it: padded to Ethernet's minimum (the test run
		// refuses an IPv4 frame shorter than an IP header).
		frame = append(frame, make([]byte, 60-len(frame))...)
	}
	in := skbCtx{}
	in[9] = testIfindex
	var out skbCtx
	ret, err := f.objs.KeepstateFastpath.Run(&ebpf.RunOptions{Data: frame, Context: in, ContextOut: &out})
	if err != nil {
		t.Fatalf("test run of a %d-byte frame: %v", len(frame), err)
	}
	if ret != 0 { // TC_ACT_OK: the program never drops
		t.Fatalf("program returned %d", ret)
	}
	return out[2]
}

var macA, macB = [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}

// pair is the engine's table (E) and the table with the fast path (K), fed the
// same packets: whatever the fast path accepts, E must accept; whatever it gives
// up, K decides after taking the connection back, exactly as E does.
type pair struct {
	t          testing.TB
	e, k       *conntrack.Table
	f          *FastPath
	accepted   int
	passed     int
	notHeld    int
	mismatches int
}

func newPair(t testing.TB) *pair {
	cfg := conntrack.DefaultConfig()
	k := conntrack.New(cfg)
	return &pair{t: t, e: conntrack.New(cfg), k: k, f: loadForTest(t, k)}
}

// decide runs one raw IP packet through the engine's table (creating a
// connection for what may open one, as the engine's rules permitting all would).
func decide(tb *conntrack.Table, p *packet.Parsed, now int64) conntrack.Verdict {
	r := decideResult(tb, p, now)
	return r.Verdict
}

func decideResult(tb *conntrack.Table, p *packet.Parsed, now int64) conntrack.Result {
	r := tb.Track(p, now)
	if r.Verdict == conntrack.NewConn {
		r = tb.Create(p, now, conntrack.Meta{})
	}
	return r
}

// feed decides ip (raw IP) both ways and checks the fast path's promises.
func (pr *pair) feed(ip []byte) {
	t := pr.t
	t.Helper()
	if len(ip)+14 > maxTestRunFrame {
		return
	}
	now := time.Now().UnixNano()
	var p packet.Parsed
	decodeErr := p.Decode(ip, packet.LinkRaw)
	mark := run(t, pr.f, packet.AppendEthernet(nil, macA, macB, nil, ip))
	var want conntrack.Verdict = conntrack.Drop
	var why string
	if decodeErr == nil {
		r := decideResult(pr.e, &p, now)
		want, why = r.Verdict, r.Reason.String()+" "+r.State.String()
	}
	switch mark {
	case MarkAccept:
		pr.accepted++
		if want != conntrack.Accept {
			pr.mismatches++
			t.Errorf("the fast path accepted a packet the engine drops (%v %s): % x", decodeErr, why, ip[:min(len(ip), 60)])
		}
		return
	case MarkPassed:
		pr.passed++
	case 0:
		pr.notHeld++
	default:
		t.Fatalf("unknown mark %#x", mark)
	}
	if decodeErr != nil {
		return
	}
	if got := decide(pr.k, &p, now); got != want {
		pr.mismatches++
		t.Errorf("after the fast path gave it up, the engine decided %v where the reference decided %v: % x", got, want, ip)
	}
	if want == conntrack.Accept {
		r, _ := lookup(pr.k, &p)
		if r {
			// Both directions were seen on the test interface: hand over.
			pr.f.Offer(&p, dirOf(pr.k, &p), testIfindex, now)
			pr.f.Offer(&p, 1-dirOf(pr.k, &p), testIfindex, now)
		}
	}
}

func lookup(tb *conntrack.Table, p *packet.Parsed) (bool, conntrack.Dir) {
	_, d, ok := tb.Lookup(p, time.Now().UnixNano())
	return ok, d
}

func dirOf(tb *conntrack.Table, p *packet.Parsed) conntrack.Dir {
	_, d := lookup(tb, p)
	return d
}

// mutate returns a copy of seg (a TCP segment built by spec) with a random
// change that may put it out of the window or change its flags.
func tcpVariant(rng *rand.Rand, s packet.TCPSpec) packet.TCPSpec {
	switch rng.IntN(12) {
	case 0:
		s.Seq += uint32(rng.IntN(1 << 20))
	case 1:
		s.Seq -= uint32(rng.IntN(1 << 20))
	case 2:
		s.Ack += uint32(rng.IntN(1 << 18))
	case 3:
		s.Ack -= uint32(rng.IntN(1 << 18))
	case 4:
		s.Flags = packet.TCPFlags(rng.IntN(256))
	case 5:
		s.Window = uint16(rng.IntN(1 << 16))
	case 6:
		s.Options.SACK[0] = packet.SACKBlock{Left: s.Ack + 1, Right: s.Ack + uint32(rng.IntN(1<<17))}
		s.Options.NumSACK = 1
	case 7:
		s.Seq = rng.Uint32()
		s.Ack = rng.Uint32()
	}
	return s
}

// TestDifferentialSynthetic runs generated conversations, with random
// disturbances, through the program and the engine.
func TestDifferentialSynthetic(t *testing.T) {
	pr := newPair(t)
	rng := rand.New(rand.NewPCG(13, 7))
	for conv := range 40 {
		c := synth.NewConv(netip.AddrPortFrom(netip.MustParseAddr("10.1.0.2"), uint16(40000+conv)),
			netip.MustParseAddrPort("10.2.0.2:443"), uint32(conv))
		pr.feed(c.Segment(synth.FromClient, packet.SYN, 0))
		pr.feed(c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0))
		pr.feed(c.Segment(synth.FromClient, packet.ACK, 0))
		for range 200 {
			from := synth.Side(rng.IntN(2))
			n := []int{0, 1, 100, 1400, 2900}[rng.IntN(5)]
			seg := c.Segment(from, packet.ACK|packet.PSH, n)
			if rng.IntN(4) == 0 {
				var p packet.Parsed
				if p.Decode(seg, packet.LinkRaw) == nil {
					s := packet.TCPSpec{Src: netip.AddrPortFrom(p.Src, p.SrcPort), Dst: netip.AddrPortFrom(p.Dst, p.DstPort),
						Seq: p.Seq, Ack: p.Ack, Flags: p.TCPFlags, Window: p.Window, Payload: make([]byte, p.PayloadLen)}
					seg = packet.AppendTCP(nil, tcpVariant(rng, s))
				}
			}
			pr.feed(seg)
		}
		if conv%3 == 0 {
			pr.feed(c.Segment(synth.FromClient, packet.FIN|packet.ACK, 0))
			pr.feed(c.Segment(synth.FromServer, packet.FIN|packet.ACK, 0))
			pr.feed(c.Segment(synth.FromClient, packet.ACK, 0))
		}
	}
	// UDP: a flow with a reply is handed over; its packets then stay in the kernel.
	for i := range 10 {
		cl := netip.AddrPortFrom(netip.MustParseAddr("10.1.0.9"), uint16(5000+i))
		sv := netip.MustParseAddrPort("10.2.0.53:53")
		if i%2 == 1 {
			cl = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::9"), uint16(5000+i))
			sv = netip.MustParseAddrPort("[2001:db8::53]:53")
		}
		for j := range 20 {
			src, dst := cl, sv
			if j%2 == 1 {
				src, dst = sv, cl
			}
			pr.feed(packet.AppendUDP(nil, packet.UDPSpec{Src: src, Dst: dst, Payload: make([]byte, 64)}))
		}
	}
	t.Logf("fast path accepted %d, gave up %d, did not hold %d; mismatches %d; %+v", pr.accepted, pr.passed, pr.notHeld, pr.mismatches, pr.f.Stats())
	if pr.accepted == 0 || pr.passed == 0 {
		t.Fatalf("the traffic did not exercise both ways out of the fast path (accepted %d, gave up %d)", pr.accepted, pr.passed)
	}
	compareTables(t, pr)
}

// compareTables checks that after all that the two tables agree on every
// connection's counters (folding the fast path in as Range does).
func compareTables(t *testing.T, pr *pair) {
	type counts struct{ p, b [2]uint64 }
	get := func(tb *conntrack.Table) map[conntrack.Key]counts {
		m := map[conntrack.Key]counts{}
		tb.Range(func(ci conntrack.ConnInfo) bool {
			var k conntrack.Key
			k.Src, k.Dst, k.Proto = ci.Src.As16(), ci.Dst.As16(), uint8(ci.Proto)
			k.SrcPort = [2]byte{byte(ci.SrcPort >> 8), byte(ci.SrcPort)}
			k.DstPort = [2]byte{byte(ci.DstPort >> 8), byte(ci.DstPort)}
			m[k] = counts{ci.Packets, ci.Bytes}
			return true
		})
		return m
	}
	e, k := get(pr.e), get(pr.k)
	if len(e) != len(k) {
		t.Errorf("%d connections in the engine's table, %d in the fast path's", len(e), len(k))
	}
	for key, c := range e {
		if k[key] != c {
			t.Errorf("connection %v: engine counters %+v, with the fast path %+v", key, c, k[key])
		}
	}
}

// TestDifferentialCorpus runs every capture of the corpus through both: first
// as it is, then again with every connection the first pass left established
// handed over, so that the program sees the captures' odd packets on held
// connections.
func TestDifferentialCorpus(t *testing.T) {
	paths := testcorpus.Need(t)
	pr := newPair(t)
	frames := 0
	for _, path := range paths {
		r, err := capture.Open(path)
		if err != nil {
			continue
		}
		var ips [][]byte
		for {
			cp, err := r.Next()
			if err != nil {
				break // io.EOF, or a corrupt capture's end: what came before counts
			}
			var p packet.Parsed
			if p.DecodeWire(cp.Data, cp.Link, cp.OrigLen); p.IPVersion == 0 || p.IPOffset >= len(cp.Data) {
				continue
			}
			ips = append(ips, append([]byte(nil), cp.Data[p.IPOffset:]...))
		}
		r.Close()
		for round := 0; round < 2; round++ {
			for _, ip := range ips {
				pr.feed(ip)
				frames++
			}
		}
	}
	t.Logf("%d packets of %d captures: fast path accepted %d, gave up %d, did not hold %d; mismatches %d",
		frames, len(paths), pr.accepted, pr.passed, pr.notHeld, pr.mismatches)
}
