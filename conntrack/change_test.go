package conntrack

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// changeLog collects what OnChange delivers.
type changeLog struct {
	mu  sync.Mutex
	got []Change
}

func (l *changeLog) add(cs []Change) {
	l.mu.Lock()
	l.got = append(l.got, cs...)
	l.mu.Unlock()
}

func (l *changeLog) take() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

func kinds(cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := c.Kind.String()
		switch c.Kind {
		case ChangeState, ChangeCreated:
			s += ":" + c.Info.State.String()
		case ChangeEnded:
			s += ":" + c.Cause.String()
		}
		out = append(out, s)
	}
	return out
}

func TestChangesOfALife(t *testing.T) {
	var log changeLog
	tab := New(Config{Strict: true, OnChange: log.add})
	run(t, tab, concat(handshake(), []step{
		{p: seg(Original, PA, cliISN+1, srvISN+1, 100), verdict: Accept, state: StateEstablished},
		{p: seg(Reply, A, srvISN+1, cliISN+101, 0), verdict: Accept, state: StateEstablished},
		{p: seg(Original, FA, cliISN+101, srvISN+1, 0), at: time.Second, verdict: Accept, state: StateFinWait},
		{p: seg(Reply, FA, srvISN+1, cliISN+102, 0), at: time.Second, verdict: Accept, state: StateLastAck},
		{p: seg(Original, A, cliISN+102, srvISN+2, 0), at: time.Second, verdict: Accept, state: StateTimeWait},
	}))
	tab.Expire(t0 + int64(time.Hour))
	got := kinds(log.take())
	want := []string{"created:SYN_SENT", "state:SYN_RECV", "state:ESTABLISHED", "state:FIN_WAIT",
		"state:LAST_ACK", "state:TIME_WAIT", "ended:closed"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
}

func TestChangeCarriesRecordAndRunsUnlocked(t *testing.T) {
	var tab *Table
	var seen []Change
	tab = New(Config{Strict: true, OnChange: func(cs []Change) {
		for _, c := range cs {
			// Calling back into the table would deadlock under a shard lock.
			if c.Kind != ChangeEnded && tab.Len() == 0 {
				t.Errorf("%v: table empty during the callback", c.Kind)
			}
			seen = append(seen, c)
		}
	}})
	run(t, tab, handshake())
	if len(seen) != 3 {
		t.Fatalf("%d changes, want 3", len(seen))
	}
	c := seen[2]
	if c.Info.Src != cliAddr || c.Info.DstPort != srvPort || c.Info.Meta.Rule != 7 {
		t.Errorf("info %+v", c.Info)
	}
	se, err := decodeRecord(c.Record[:])
	if err != nil {
		t.Fatal(err)
	}
	if se.e.state() != StateEstablished || se.meta.Rule != 7 || se.e.tcp[Original].end != cliISN+1 {
		t.Errorf("record: state %v meta %+v windows %+v", se.e.state(), se.meta, se.e.tcp)
	}
}

func TestSweepUpdatesOncePerConnection(t *testing.T) {
	tab := New(Config{Strict: true, TrackUpdates: true})
	establish(t, tab, 50)
	tab.SweepUpdates(t0, func([]Change) {}) // the handshakes' marks
	var p packet.Parsed
	for range 10 {
		for i := range 20 {
			fillSeg(&p, i, Original, A, c1, s1)
			if r := tab.Track(&p, t0+int64(time.Second)); r.Verdict != Accept {
				t.Fatalf("%+v", r)
			}
		}
	}
	var got []Change
	n := tab.SweepUpdates(t0+2*int64(time.Second), func(cs []Change) { got = append(got, cs...) })
	if n != 20 || len(got) != 20 {
		t.Fatalf("swept %d (%d delivered), want 20: one per connection that had packets", n, len(got))
	}
	for _, c := range got {
		if c.Kind != ChangeUpdated || c.Info.LastSeen != t0+int64(time.Second) {
			t.Fatalf("%v last seen %d", c.Kind, c.Info.LastSeen-t0)
		}
	}
	if n := tab.SweepUpdates(t0+3*int64(time.Second), func([]Change) {}); n != 0 {
		t.Errorf("second sweep delivered %d, want 0", n)
	}
}

func TestSweepSkipsEndedAndCompacts(t *testing.T) {
	tab := New(Config{Strict: true, TrackUpdates: true, TombstoneCap: -1})
	var p packet.Parsed
	// Connections that open, get marked and are flushed, many times over: the
	// dirty list must not grow with them when nobody sweeps.
	for range 50 {
		establish(t, tab, 100)
		tab.CloseIf(func(*ConnInfo) bool { return true }, EndFlushed)
	}
	for _, sh := range tab.shards {
		if len(sh.dirty) > 2*100+1024 {
			t.Fatalf("dirty list holds %d indices for %d entries", len(sh.dirty), sh.used)
		}
	}
	establish(t, tab, 10)
	fillSeg(&p, 3, Original, A, c1, s1)
	tab.Track(&p, t0)
	if n := tab.SweepUpdates(t0, func([]Change) {}); n != 10 {
		t.Errorf("swept %d, want the 10 live connections", n)
	}
}

func TestChangesDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items on purpose")
	}
	tab := New(Config{Strict: true, TrackUpdates: true, OnEnd: func(ConnInfo, EndCause) {},
		OnChange: func([]Change) {}})
	establish(t, tab, 100)
	var p packet.Parsed
	fillSeg(&p, 42, Original, PA, c1, s1)
	if a := testing.AllocsPerRun(1000, func() { tab.Track(&p, t0) }); a != 0 {
		t.Errorf("established path with OnChange and TrackUpdates: %.1f allocations per packet", a)
	}
	// A whole life: created, three state changes, ended by a RST's CLOSE and
	// reopened; the sweep of its marks.
	life := func() {
		fillSeg(&p, 1000, Original, S, cliISN, 0)
		if r := tab.Track(&p, t0); r.Verdict == NewConn {
			tab.Create(&p, t0, Meta{Rule: 1})
		}
		fillSeg(&p, 1000, Reply, SA, srvISN, cliISN+1)
		tab.Track(&p, t0)
		fillSeg(&p, 1000, Original, A, cliISN+1, srvISN+1)
		tab.Track(&p, t0)
		fillSeg(&p, 1000, Original, RA, cliISN+1, srvISN+1)
		tab.Track(&p, t0)
		tab.SweepUpdates(t0, func([]Change) {})
	}
	life()
	if a := testing.AllocsPerRun(100, life); a != 0 {
		t.Errorf("a connection's life with OnChange: %.1f allocations", a)
	}
}

// pair is two tables kept in step by applying each one's changes to the other, as
// the cluster does, synchronously.
type pair struct {
	a, b *Table
	toB  []Change
	toA  []Change
	tb   testing.TB
	mu   sync.Mutex
}

func newPair(tb testing.TB, strict bool) *pair {
	pr := &pair{tb: tb}
	keep := func(dst *[]Change) func([]Change) {
		return func(cs []Change) {
			pr.mu.Lock()
			defer pr.mu.Unlock()
			for _, c := range cs {
				if !c.Remote && c.Kind != ChangeEnded || c.Kind == ChangeEnded && !c.Remote && c.Cause != EndExpired && c.Cause != EndClosed {
					*dst = append(*dst, c)
				}
			}
		}
	}
	pr.a = New(Config{Strict: strict, TrackUpdates: true, OnChange: keep(&pr.toB)})
	pr.b = New(Config{Strict: strict, TrackUpdates: true, OnChange: keep(&pr.toA)})
	return pr
}

// sync delivers the pending changes (and a sweep of updates) both ways.
func (pr *pair) sync(now int64) {
	pr.a.SweepUpdates(now, func(cs []Change) { pr.mu.Lock(); pr.toB = append(pr.toB, cs...); pr.mu.Unlock() })
	pr.b.SweepUpdates(now, func(cs []Change) { pr.mu.Lock(); pr.toA = append(pr.toA, cs...); pr.mu.Unlock() })
	pr.mu.Lock()
	toA, toB := pr.toA, pr.toB
	pr.toA, pr.toB = nil, nil
	pr.mu.Unlock()
	for _, c := range toB {
		if err := pr.b.Apply(c.Kind, c.Cause, c.Record[:], now); err != nil {
			pr.tb.Fatal(err)
		}
	}
	for _, c := range toA {
		if err := pr.a.Apply(c.Kind, c.Cause, c.Record[:], now); err != nil {
			pr.tb.Fatal(err)
		}
	}
}

func track(tb testing.TB, tab *Table, p *packet.Parsed, now int64) Result {
	tb.Helper()
	r := tab.Track(p, now)
	if r.Verdict == NewConn {
		r = tab.Create(p, now, Meta{Rule: 7})
	}
	return r
}

func TestFailoverRelearnsWindows(t *testing.T) {
	pr := newPair(t, true)
	now := t0
	for _, st := range handshake() {
		if r := track(t, pr.a, st.p, now); r.Verdict != Accept {
			t.Fatalf("%+v", r)
		}
	}
	// Data flows through A; B hears of it in batches.
	for n := range 10 {
		if r := track(t, pr.a, seg(Original, PA, cliISN+1+uint32(n*1000), srvISN+1, 1000), now); r.Verdict != Accept {
			t.Fatal(r)
		}
	}
	pr.sync(now)
	ci := only(t, pr.b)
	if ci.State != StateEstablished || ci.Meta.Rule != 7 || ci.Timeout != DefaultTimeouts().TCPEstablished {
		t.Fatalf("on the backup: %+v", ci)
	}
	// More data went through A that B never heard of (the last batch before A
	// died), far beyond any window B could know: B must accept it.
	now += int64(time.Second)
	far := uint32(cliISN + 1 + 10_000_000)
	if r := track(t, pr.b, seg(Original, PA, far, srvISN+1+500_000, 1000), now); r.Verdict != Accept {
		t.Fatalf("after failover, original direction: %v %v", r.Verdict, r.Reason)
	}
	if r := track(t, pr.b, seg(Reply, A, srvISN+1+500_000, far+1000, 0), now); r.Verdict != Accept {
		t.Fatalf("after failover, reply: %v %v", r.Verdict, r.Reason)
	}
	// Both directions seen again: windows are enforced.
	if r := track(t, pr.b, seg(Original, PA, far+1000+50_000_000, srvISN+1+500_000, 100), now); r.Verdict != Drop || r.Reason != reason.OutOfWindow {
		t.Fatalf("a segment far beyond the relearnt window: %v %v, want out_of_window", r.Verdict, r.Reason)
	}
	if r := track(t, pr.b, seg(Original, PA, far+1000, srvISN+1+500_000, 100), now); r.Verdict != Accept {
		t.Fatalf("in window: %v %v", r.Verdict, r.Reason)
	}
	if r := track(t, pr.b, seg(Reply, A, srvISN+1+500_000, far+1100, 0), now); r.Verdict != Accept {
		t.Fatalf("ack: %v %v", r.Verdict, r.Reason)
	}
	// The established timeout, not a picked-up connection's cap.
	if ci := only(t, pr.b); ci.Packets[Original] < 11 || ci.Timeout != DefaultTimeouts().TCPEstablished {
		t.Errorf("after failover: %+v", ci)
	}
}

func TestApplyKeepsWhatWasSeenHere(t *testing.T) {
	pr := newPair(t, true)
	now := t0
	for _, st := range handshake() {
		track(t, pr.a, st.p, now)
	}
	pr.sync(now)
	// A stale record (the handshake's SYN_RECV, applied again) does not take B's
	// copy back.
	var stale Change
	pr2 := New(Config{Strict: true, OnChange: func(cs []Change) {
		for _, c := range cs {
			if c.Info.State == StateSynRecv {
				stale = c
			}
		}
	}})
	run(t, pr2, handshake())
	if err := pr.b.Apply(stale.Kind, 0, stale.Record[:], now); err != nil {
		t.Fatal(err)
	}
	if ci := only(t, pr.b); ci.State != StateEstablished {
		t.Errorf("state went back to %v", ci.State)
	}
	// The end of a connection B has seen since is ignored.
	now += int64(time.Second)
	track(t, pr.b, seg(Original, A, cliISN+1, srvISN+1, 0), now)
	var rec Record // the connection's end as another table had it, at t0
	flushed := New(Config{Strict: true, OnChange: func(cs []Change) {
		for _, c := range cs {
			if c.Kind == ChangeEnded {
				rec = c.Record
			}
		}
	}})
	run(t, flushed, handshake())
	flushed.CloseIf(func(*ConnInfo) bool { return true }, EndFlushed)
	// (Its times are ages, rebased onto the now it is applied at: applied at
	// now-2s, it describes a connection last seen before B's packet at now.)
	if err := pr.b.Apply(ChangeEnded, EndFlushed, rec[:], now-int64(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if pr.b.Len() != 1 {
		t.Fatalf("B ended a connection it saw after the peer's record")
	}
	// An end recorded after B's last packet removes it, with a tombstone, and
	// a stale update arriving after the end does not bring it back.
	if err := pr.b.Apply(ChangeEnded, EndFlushed, rec[:], now+int64(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pr.b.Len() != 0 {
		t.Fatalf("end not applied: %d connections", pr.b.Len())
	}
	if err := pr.b.Apply(ChangeUpdated, 0, stale.Record[:], now+int64(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pr.b.Len() != 0 {
		t.Errorf("a record older than the end brought the connection back")
	}
}

func TestApplyRefusesBadRecords(t *testing.T) {
	tab := strictTable()
	if err := tab.Apply(ChangeCreated, 0, make([]byte, 10), t0); err == nil {
		t.Error("short record accepted")
	}
	var rec Record
	rec[0] = recEntry
	if err := tab.Apply(ChangeCreated, 0, rec[:], t0); err == nil {
		t.Error("record of state NONE accepted")
	}
	if tab.Len() != 0 {
		t.Error("a bad record added a connection")
	}
}

// In active-active with the two directions on different nodes, the handshake is
// still enforced when each node hears of the other's step before the next packet.
func TestSplitHandshakeStrict(t *testing.T) {
	pr := newPair(t, true)
	now := t0
	hs := handshake()
	if r := track(t, pr.a, hs[0].p, now); r.Verdict != Accept { // SYN through A
		t.Fatal(r)
	}
	// The SYN-ACK overtakes the SYN's update: B refuses it.
	if r := track(t, pr.b, hs[1].p, now); r.Verdict != Drop || r.Reason != reason.HandshakeNotCompleted {
		t.Fatalf("SYN-ACK before the update: %v %v", r.Verdict, r.Reason)
	}
	pr.sync(now)
	if r := track(t, pr.b, hs[1].p, now); r.Verdict != Accept || r.State != StateSynRecv {
		t.Fatalf("SYN-ACK through B: %v %v %v", r.Verdict, r.Reason, r.State)
	}
	pr.sync(now)
	if r := track(t, pr.a, hs[2].p, now); r.Verdict != Accept || r.State != StateEstablished {
		t.Fatalf("ACK through A: %v %v %v", r.Verdict, r.Reason, r.State)
	}
	pr.sync(now)
	for n := range 5 {
		o := seg(Original, PA, cliISN+1+uint32(n*100), srvISN+1+uint32(n*200), 100)
		rp := seg(Reply, PA, srvISN+1+uint32(n*200), cliISN+1+uint32(n*100+100), 200)
		if r := track(t, pr.a, o, now); r.Verdict != Accept {
			t.Fatalf("data through A: %v %v", r.Verdict, r.Reason)
		}
		if r := track(t, pr.b, rp, now); r.Verdict != Accept {
			t.Fatalf("data through B: %v %v", r.Verdict, r.Reason)
		}
	}
	pr.sync(now)
	// Still strict about handshakes: an ACK for a connection nobody opened.
	stray := seg(Original, A, 1, 2, 0)
	stray.SrcPort++
	if r := track(t, pr.a, stray, now); r.Verdict != Drop {
		t.Fatalf("unknown ACK: %v", r.Verdict)
	}
	for _, tab := range []*Table{pr.a, pr.b} {
		if ci := only(t, tab); ci.State != StateEstablished {
			t.Errorf("state %v", ci.State)
		}
	}
}

func TestApplySnapshotCatchesUp(t *testing.T) {
	src := New(Config{Strict: true})
	establish(t, src, 300)
	var buf bytes.Buffer
	if err := src.WriteSnapshot(&buf, t0); err != nil {
		t.Fatal(err)
	}
	dst := New(Config{Strict: true})
	establish(t, dst, 10) // already holds some of them
	n, err := dst.ApplySnapshot(bytes.NewReader(buf.Bytes()), t0+int64(time.Second))
	if err != nil || n != 300 {
		t.Fatalf("%d, %v", n, err)
	}
	if dst.Len() != 300 {
		t.Fatalf("%d connections after catch-up, want 300", dst.Len())
	}
	// A taken-over connection passes a packet beyond what the snapshot knew.
	var p packet.Parsed
	fillSeg(&p, 200, Original, PA, c1+5_000_000, s1)
	p.PayloadLen = 100
	if r := dst.Track(&p, t0+int64(2*time.Second)); r.Verdict != Accept {
		t.Fatalf("%v %v", r.Verdict, r.Reason)
	}
	bad := buf.Bytes()[:buf.Len()-3]
	if _, err := dst.ApplySnapshot(bytes.NewReader(bad), t0); err == nil {
		t.Error("truncated snapshot applied")
	}
}

// BenchmarkTrackEstablishedUpdates is BenchmarkTrackEstablished with the changes
// a cluster node listens to (OnChange, TrackUpdates) and a sweep every 64 Ki
// packets, whose cost is included.
func BenchmarkTrackEstablishedUpdates(b *testing.B) {
	for _, n := range sizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := New(Config{Strict: true, MaxConns: -1, TrackUpdates: true, OnChange: func([]Change) {}})
			establish(b, tab, n)
			pkts := make([]packet.Parsed, 4096)
			for j := range pkts {
				fillSeg(&pkts[j], rand.IntN(n), Original, A, c1, s1)
			}
			swept := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if r := tab.Track(&pkts[i&4095], t0); r.Verdict != Accept {
					b.Fatal(r)
				}
				if i&0xffff == 0xffff {
					swept += tab.SweepUpdates(t0, func([]Change) {})
				}
			}
			b.ReportMetric(float64(swept)/float64(b.N), "updates/op")
		})
	}
}
