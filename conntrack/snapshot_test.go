package conntrack

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// sampleTable holds one connection of each kind plus a tombstone.
func sampleTable(t *testing.T) *Table {
	t.Helper()
	tab := New(Config{Strict: false, PerSourceConns: 100, Timeouts: Timeouts{TCPEstablished: time.Hour}})
	syn := seg(Original, S, cliISN, 0, 0)
	syn.TCPOpts.HasWScale, syn.TCPOpts.WScale, syn.TCPOpts.SACKPermitted = true, 7, true
	synack := seg(Reply, SA, srvISN, cliISN+1, 0)
	synack.TCPOpts.HasWScale, synack.TCPOpts.WScale, synack.TCPOpts.SACKPermitted = true, 2, true
	run(t, tab, []step{
		{p: syn, verdict: Accept, state: StateSynSent},
		{p: synack, verdict: Accept, state: StateSynRecv},
		{p: seg(Original, A, c1, s1, 0), at: time.Second, verdict: Accept, state: StateEstablished},
		{p: seg(Original, PA, c1, s1, 1400), at: 2 * time.Second, verdict: Accept, state: StateEstablished},
		{p: seg(Reply, PA, s1, c1+1400, 300), at: 3 * time.Second, verdict: Accept, state: StateEstablished},
	})
	tab.Create(udp(cliAddr, srvAddr, 5000, 53, 30), t0+4*sec, Meta{Rule: 11, Flags: 2})
	tab.Track(udp(srvAddr, cliAddr, 53, 5000, 90), t0+5*sec)
	tab.Create(echo(cliAddr, srvAddr, 8, 9), t0+5*sec, Meta{Rule: 12})
	pick := seg(Original, PA, 777, 888, 10)
	pick.SrcPort = 41000
	tab.Create(pick, t0+6*sec, Meta{Rule: 13})
	// A tombstone: a connection that expired.
	old := udp(cliAddr, srvAddr, 6000, 123, 0)
	tab.Create(old, t0, Meta{})
	tab.Expire(t0 + 30*sec)
	return tab
}

func byID(tab *Table) map[Key]ConnInfo {
	out := map[Key]ConnInfo{}
	tab.Range(func(ci ConnInfo) bool {
		k := Key{Src: ci.Src.As16(), Dst: ci.Dst.As16(), SrcPort: be16(ci.SrcPort), DstPort: be16(ci.DstPort), Proto: uint8(ci.Proto)}
		out[k] = ci
		return true
	})
	return out
}

func entryOf(tab *Table, k Key) entry {
	h := k.hash(&tab.seed)
	sh := tab.shardOf(h)
	i, _, _ := sh.lookupLocked(&k, h)
	return *sh.at(i)
}

func TestSnapshotRoundTrip(t *testing.T) {
	tab := sampleTable(t)
	snapAt := t0 + 30*sec
	var buf bytes.Buffer
	if err := tab.WriteSnapshot(&buf, snapAt); err != nil {
		t.Fatal(err)
	}
	const shift = int64(3 * time.Hour)
	back := New(Config{Strict: false, PerSourceConns: 100, Timeouts: Timeouts{TCPEstablished: time.Hour}})
	if err := back.ReadSnapshot(bytes.NewReader(buf.Bytes()), snapAt+shift); err != nil {
		t.Fatal(err)
	}
	want, got := byID(tab), byID(back)
	if len(want) != 4 || len(got) != 4 || back.Len() != 4 {
		t.Fatalf("connections: wrote %d, read %d (len %d)", len(want), len(got), back.Len())
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("missing %v", w)
		}
		we, ge := entryOf(tab, k), entryOf(back, k)
		if we.state() == StateEstablished && (we.dflags[0]|we.dflags[1])&dfUnacked != 0 && we.sf&fLiberal == 0 {
			// Unacknowledged data is not known after a restore: the established
			// timeout applies until the next data.
			w.Timeout = time.Hour
		}
		if g.State != w.State || g.Packets != w.Packets || g.Bytes != w.Bytes || g.Meta != w.Meta ||
			g.Assured != w.Assured || g.Timeout != w.Timeout {
			t.Errorf("connection differs:\n got %+v\nwant %+v", g, w)
		}
		if g.LastSeen != w.LastSeen+shift || g.Created != w.Created+shift {
			t.Errorf("times not rebased: last %d->%d created %d->%d", w.LastSeen, g.LastSeen, w.Created, g.Created)
		}
		want := we
		if we.key.Proto == uint8(packet.ProtoTCP) {
			// Restored TCP connections relearn their windows (see relearn),
			// keeping their state, flags, scale and SACK.
			want.tcp = [2]tcpDir{}
			want.dflags[0] &^= dfUnacked
			want.dflags[1] &^= dfUnacked
			want.sf |= fLiberal
		}
		if want.tcp != ge.tcp || want.dflags != ge.dflags || want.sf != ge.sf {
			t.Errorf("window state differs: %+v %v %x vs %+v %v %x", want.tcp, want.dflags, want.sf, ge.tcp, ge.dflags, ge.sf)
		}
	}
	// The restored TCP connection goes on through segments it never saw, in both
	// directions: 300 000 bytes from the client passed while no table watched.
	r := back.Track(seg(Reply, PA, s1+300, c1+1400+300_000, 1000), snapAt+shift+sec)
	if r.Verdict != Accept || r.State != StateEstablished {
		t.Fatalf("restored connection: %+v", r)
	}
	if r := back.Track(seg(Original, PA, c1+1400+300_000, s1+1300, 10), snapAt+shift+sec); r.Verdict != Accept {
		t.Fatalf("restored connection's client: %+v", r)
	}
	// Both directions seen again: the windows (scale 2 from the server) are
	// enforced once more.
	if r := back.Track(seg(Reply, PA, s1+1300+1<<30, c1+1400+300_010, 10), snapAt+shift+sec); r.Reason != reason.OutOfWindow {
		t.Fatalf("relearned window not enforced: %+v", r)
	}
	// The tombstone came along, rebased: idle is the time since its last packet.
	r = back.Track(udp(srvAddr, cliAddr, 123, 6000, 0), snapAt+shift)
	if r.Verdict != NewConn {
		t.Fatalf("UDP over a tombstone: %+v", r)
	}
	if st := back.Stats(); st.Tombstones != 1 {
		t.Fatalf("tombstones %d", st.Tombstones)
	}
	// The per-source count was rebuilt.
	if n := back.src.sources(); n != 1 {
		t.Fatalf("%d sources", n)
	}
	// Reading the same snapshot again adds nothing: tuples already live are kept.
	if err := back.ReadSnapshot(bytes.NewReader(buf.Bytes()), snapAt+shift); err != nil || back.Len() != 4 {
		t.Fatalf("second read: %v, len %d", err, back.Len())
	}
	checkInvariants(t, back)
}

func TestSnapshotTombstoneRebased(t *testing.T) {
	tab := New(Config{Strict: true, Timeouts: Timeouts{TCPEstablished: time.Hour}})
	run(t, tab, handshake())
	tab.Expire(t0 + int64(time.Hour))
	var buf bytes.Buffer
	if err := tab.WriteSnapshot(&buf, t0+int64(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	back := New(Config{Strict: true})
	later := int64(5000) * int64(time.Hour)
	if err := back.ReadSnapshot(&buf, later); err != nil {
		t.Fatal(err)
	}
	r := back.Track(seg(Reply, A, s1, c1, 0), later+int64(30*time.Minute))
	if r.Reason != reason.StateExpired || r.Idle != 2*time.Hour || r.Timeout != time.Hour || r.EndedState != StateEstablished {
		t.Fatalf("restored tombstone: %+v", r)
	}
}

func TestSnapshotErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleTable(t).WriteSnapshot(&buf, t0+30*sec); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for n := range len(good) {
		tab := strictTable()
		err := tab.ReadSnapshot(bytes.NewReader(good[:n]), t0)
		if !errors.Is(err, ErrSnapshotTruncated) {
			t.Fatalf("prefix of %d bytes: %v, want truncated", n, err)
		}
		if tab.Len() != 0 || tab.Stats().Tombstones != 0 {
			t.Fatalf("prefix of %d bytes: partially applied", n)
		}
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), ErrSnapshotMagic},
		{"a pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, ErrSnapshotMagic},
		{"short garbage", []byte("ab"), ErrSnapshotMagic},
		{"newer version", mutate(func(b []byte) []byte { b[4] = 2; return b }), ErrSnapshotVersion},
		{"flipped byte", mutate(func(b []byte) []byte { b[20] ^= 1; return b }), ErrSnapshotCorrupt},
		{"bad checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), ErrSnapshotCorrupt},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrSnapshotCorrupt},
		{"unknown record", mutate(func(b []byte) []byte { b[8] = 9; return b }), ErrSnapshotCorrupt},
	}
	for _, tt := range tests {
		err := strictTable().ReadSnapshot(bytes.NewReader(tt.data), t0)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// An empty table round-trips to an empty table.
	buf.Reset()
	if err := strictTable().WriteSnapshot(&buf, t0); err != nil {
		t.Fatal(err)
	}
	if err := strictTable().ReadSnapshot(&buf, t0); err != nil {
		t.Fatal(err)
	}
}

// checkInvariants verifies every shard's internal structure: index, lists, free
// list and counts agree, and every listed entry is found by lookup in its class.
func checkInvariants(t testing.TB, tab *Table) {
	t.Helper()
	total := 0
	for sn, sh := range tab.shards {
		sh.mu.Lock()
		onLists := 0
		sh.forEachListLocked(func(p uint8, c class, l *list) {
			prev := nilIdx
			floor := int64(-1 << 63) // the largest slice start seen so far on this list
			for i := l.head; i != nilIdx; i = sh.at(i).next {
				e := sh.at(i)
				if e.lastSeen < floor {
					t.Fatalf("shard %d profile %d class %d: entry %d last seen %d before an earlier entry's slice %d", sn, p, c, i, e.lastSeen, floor)
				}
				floor = max(floor, sliceStart(e.lastSeen, sh.shiftOf(tab.cfg.Load(), p, c)))
				if e.prev != prev {
					t.Fatalf("shard %d class %d: entry %d prev %d, want %d", sn, c, i, e.prev, prev)
				}
				if e.list() != c || sh.profileOf(e) != p {
					t.Fatalf("shard %d: entry %d on list %d of profile %d but says list %d (class %d) of profile %d", sn, i, c, p, e.list(), e.class(), sh.profileOf(e))
				}
				if l := e.list(); l != e.class() && (e.class() != clsEstablished || (l != clsUnacked && l != clsRefiled)) {
					t.Fatalf("shard %d: entry %d of class %d on list %d", sn, i, e.class(), l)
				}
				if p > 0 && sh.profs[p-1].established != int64(sh.metas[e.meta].IdleTimeout) {
					t.Fatalf("shard %d: entry %d with idle timeout %v on profile %d of %d ns", sn, i, sh.metas[e.meta].IdleTimeout, p, sh.profs[p-1].established)
				}
				h := e.key.hash(sh.seed)
				if tab.shardOf(h) != sh {
					t.Fatalf("entry %d in the wrong shard", i)
				}
				if j, d, ok := sh.lookupLocked(&e.key, h); !ok || j != i || d != Original {
					t.Fatalf("shard %d: entry %d not found by lookup (%d %v %v)", sn, i, j, d, ok)
				}
				prev = i
				onLists++
				if p == 0 && i == l.head && evictTier[c] >= 0 {
					if seen := sh.headSeen[c]; seen > e.lastSeen {
						t.Fatalf("shard %d class %d: head last seen %d, published as %d", sn, c, e.lastSeen, seen)
					}
				}
			}
			if l.tail != prev {
				t.Fatalf("shard %d class %d: tail %d, want %d", sn, c, l.tail, prev)
			}
		})
		for tier, classes := range evictionTiers {
			least := noHead
			for _, c := range classes {
				if sh.lists[c].head == nilIdx && sh.headSeen[c] != noHead {
					t.Fatalf("shard %d class %d: empty list recorded with a head", sn, c)
				}
				least = min(least, sh.headSeen[c])
			}
			if got := sh.tierSeen[tier].Load(); got != least {
				t.Fatalf("shard %d: eviction tier %d published %d, its heads' least is %d", sn, tier, got, least)
			}
		}
		indexed := 0
		for _, v := range sh.index {
			if v != 0 {
				indexed++
			}
		}
		free := 0
		for i := sh.free; i != nilIdx; i = sh.at(i).next {
			free++
		}
		if onLists != sh.used || indexed != sh.used || free+sh.used != int(sh.handed) {
			t.Fatalf("shard %d: %d on lists, %d indexed, %d free, used %d, handed %d", sn, onLists, indexed, free, sh.used, sh.handed)
		}
		total += sh.used
		sh.mu.Unlock()
	}
	if total != tab.Len() {
		t.Fatalf("entries %d, Len %d", total, tab.Len())
	}
	n := 0
	tab.Range(func(ci ConnInfo) bool {
		if ci.State >= numStates || ci.State == StateNone {
			t.Fatalf("Range: state %v", ci.State)
		}
		n++
		return true
	})
	if n != total {
		t.Fatalf("Range saw %d of %d", n, total)
	}
}

var _ = packet.ProtoTCP

// Restoring into a table that already holds connections keeps the lists in
// last-seen order: a restored connection idle for longer than one already there
// still expires on time.
func TestSnapshotMergeKeepsExpiryOrder(t *testing.T) {
	cfg := Config{Shards: 1, Timeouts: Timeouts{UDPUnreplied: 120 * time.Second}} // one shard: one list for both
	src := New(cfg)
	src.Create(udp(addr4(1), srvAddr, 1, 53, 0), t0, Meta{})
	var buf bytes.Buffer
	if err := src.WriteSnapshot(&buf, t0+100*sec); err != nil { // idle 100 s
		t.Fatal(err)
	}
	now := t0 + 200*sec
	dst := New(cfg)
	dst.Create(udp(addr4(2), srvAddr, 1, 53, 0), now, Meta{})
	if err := dst.ReadSnapshot(&buf, now); err != nil || dst.Len() != 2 {
		t.Fatalf("ReadSnapshot: %v, %d connections", err, dst.Len())
	}
	checkInvariants(t, dst)
	// The restored one was last seen at now-100 s: it expires 20 s from now.
	if n := dst.Expire(now + 20*sec - 1); n != 0 {
		t.Fatalf("expired %d before its time", n)
	}
	if n := dst.Expire(now + 20*sec); n != 1 {
		t.Fatalf("expired %d at the restored connection's time, want 1", n)
	}
}
