package conntrack

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

const sec = int64(time.Second)

// TestExpiryExactInstants: every class expires exactly at lastSeen+timeout, by
// Expire and by a packet that finds the entry.
func TestExpiryExactInstants(t *testing.T) {
	to := Timeouts{
		TCPSynSent: 11 * time.Second, TCPSynRecv: 12 * time.Second, TCPEstablished: 13 * time.Second,
		TCPFinWait: 14 * time.Second, TCPCloseWait: 15 * time.Second, TCPLastAck: 16 * time.Second,
		TCPTimeWait: 17 * time.Second, TCPClose: 18 * time.Second, TCPPickup: 9 * time.Second,
		UDPUnreplied: 19 * time.Second, UDPReplied: 20 * time.Second, ICMP: 21 * time.Second,
		OtherUnreplied: 22 * time.Second, OtherReplied: 23 * time.Second,
	}
	hs := handshake()
	tests := []struct {
		name   string
		steps  []step
		strict bool
		want   time.Duration
		state  State
		cause  EndCause
	}{
		{"SYN_SENT", hs[:1], true, to.TCPSynSent, StateSynSent, EndExpired},
		{"SYN_RECV", hs[:2], true, to.TCPSynRecv, StateSynRecv, EndExpired},
		{"ESTABLISHED", hs, true, to.TCPEstablished, StateEstablished, EndExpired},
		{"FIN_WAIT", concat(hs, []step{{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait}}), true, to.TCPFinWait, StateFinWait, EndExpired},
		{"CLOSE_WAIT", concat(hs, []step{
			{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
			{p: seg(Reply, A, s1, c1+1, 0), verdict: Accept, state: StateCloseWait}}), true, to.TCPCloseWait, StateCloseWait, EndExpired},
		{"LAST_ACK", concat(hs, []step{
			{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
			{p: seg(Reply, FA, s1, c1+1, 0), verdict: Accept, state: StateLastAck}}), true, to.TCPLastAck, StateLastAck, EndClosed},
		{"TIME_WAIT", concat(hs, []step{
			{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
			{p: seg(Reply, FA, s1, c1+1, 0), verdict: Accept, state: StateLastAck},
			{p: seg(Original, A, c1+1, s1+1, 0), verdict: Accept, state: StateTimeWait}}), true, to.TCPTimeWait, StateTimeWait, EndClosed},
		{"CLOSE", concat(hs, []step{{p: seg(Reply, R, s1, 0, 0), verdict: Accept, state: StateClose}}), true, to.TCPClose, StateClose, EndClosed},
		{"pickup", []step{{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished}}, false, to.TCPPickup, StateEstablished, EndExpired},
		{"UDP unreplied", []step{{p: udp(cliAddr, srvAddr, 1, 2, 0), verdict: Accept, state: StateUDPUnreplied}}, true, to.UDPUnreplied, StateUDPUnreplied, EndExpired},
		{"UDP replied", []step{
			{p: udp(cliAddr, srvAddr, 1, 2, 0), verdict: Accept, state: StateUDPUnreplied},
			{p: udp(srvAddr, cliAddr, 2, 1, 0), verdict: Accept, state: StateUDPReplied}}, true, to.UDPReplied, StateUDPReplied, EndExpired},
		{"ICMP", []step{{p: echo(cliAddr, srvAddr, 8, 1), verdict: Accept, state: StateICMPUnreplied}}, true, to.ICMP, StateICMPUnreplied, EndExpired},
		{"other unreplied", []step{{p: &packet.Parsed{Proto: 50, Src: cliAddr, Dst: srvAddr}, verdict: Accept, state: StateOtherUnreplied}}, true, to.OtherUnreplied, StateOtherUnreplied, EndExpired},
	}
	for _, tt := range tests {
		for _, byExpire := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/expire=%v", tt.name, byExpire), func(t *testing.T) {
				var ended []ConnInfo
				var causes []EndCause
				tab := New(Config{Strict: tt.strict, Timeouts: to, OnEnd: func(ci ConnInfo, c EndCause) {
					ended, causes = append(ended, ci), append(causes, c)
				}})
				run(t, tab, tt.steps)
				if ci := only(t, tab); ci.Timeout != tt.want {
					t.Fatalf("timeout %v, want %v", ci.Timeout, tt.want)
				}
				deadline := t0 + int64(tt.want)
				if byExpire {
					if n := tab.Expire(deadline - 1); n != 0 || tab.Len() != 1 {
						t.Fatalf("Expire(deadline-1ns) removed %d", n)
					}
					if n := tab.Expire(deadline); n != 1 || tab.Len() != 0 {
						t.Fatalf("Expire(deadline) removed %d, len %d", n, tab.Len())
					}
				} else {
					// A packet for the entry at the deadline finds it gone.
					last := tt.steps[len(tt.steps)-1].p
					r := tab.Track(last, deadline)
					if r.Verdict == Accept {
						t.Fatalf("packet at the deadline accepted: %+v", r)
					}
					if tab.Len() != 0 {
						t.Fatalf("len %d after a packet at the deadline", tab.Len())
					}
				}
				if len(ended) != 1 || causes[0] != tt.cause || ended[0].State != tt.state {
					t.Fatalf("OnEnd got %v %v, want one %v in %v", causes, ended, tt.cause, tt.state)
				}
			})
		}
	}
}

// TestKeepAliveAfterExpiry is story 2 of the seeds: a 3600 s established timeout, a
// keep-alive after 7200 s of silence.
func TestKeepAliveAfterExpiry(t *testing.T) {
	for _, reap := range []bool{true, false} {
		tab := New(Config{Strict: true, Timeouts: Timeouts{TCPEstablished: 3600 * time.Second}})
		res := run(t, tab, concat(handshake(), []step{
			{p: seg(Original, PA, c1, s1, 100), at: 50 * time.Minute, verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, s1, c1+100, 1000), at: 50 * time.Minute, verdict: Accept, state: StateEstablished},
			{p: seg(Original, A, c1+100, s1+1000, 0), at: 50 * time.Minute, verdict: Accept, state: StateEstablished},
		}))
		if reap {
			if n := tab.Expire(t0 + int64(110*time.Minute)); n != 1 {
				t.Fatalf("expired %d at 12:00", n)
			}
		}
		// Two hours after the last packet, the database's keep-alive, seq = next-1.
		ka := seg(Reply, A, s1+1000-1, c1+100, 0)
		r := tab.Track(ka, t0+int64(170*time.Minute))
		if r.Verdict != Drop || r.Reason != reason.StateExpired || r.Idle != 7200*time.Second ||
			r.Timeout != 3600*time.Second || r.EndedState != StateEstablished || r.Dir != Reply ||
			r.ID != res[0].ID || r.EndedAt != t0+int64(110*time.Minute) {
			t.Fatalf("reap=%v: keep-alive got %+v", reap, r)
		}
		if st := tab.Stats(); st.TombstoneHits != 1 || st.Expired != 1 || st.Tombstones != 1 {
			t.Fatalf("stats %+v", st)
		}
	}
}

func TestTombstoneAfterClose(t *testing.T) {
	tab := strictTable()
	run(t, tab, concat(handshake(), []step{
		{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
		{p: seg(Reply, FA, s1, c1+1, 0), verdict: Accept, state: StateLastAck},
		{p: seg(Original, A, c1+1, s1+1, 0), verdict: Accept, state: StateTimeWait},
	}))
	tab.Expire(t0 + 120*sec)
	// A late retransmitted FIN from the server.
	r := tab.Track(seg(Reply, FA, s1, c1+1, 0), t0+200*sec)
	if r.Reason != reason.StateExpired || r.EndedState != StateTimeWait || r.Timeout != 120*time.Second || r.Idle != 200*time.Second {
		t.Fatalf("late FIN: %+v", r)
	}
	if st := tab.Stats(); st.Closed != 1 || st.Expired != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A SYN is a new connection even with a tombstone.
	if r := tab.Track(seg(Original, S, 5, 0, 0), t0+200*sec); r.Verdict != NewConn {
		t.Fatalf("SYN over a tombstone: %+v", r)
	}
	// After the tombstone TTL, a stray packet is a plain missing handshake again.
	r = tab.Track(seg(Reply, FA, s1, c1+1, 0), t0+120*sec+int64(DefaultTombstoneTTL))
	if r.Reason != reason.HandshakeNotCompleted {
		t.Fatalf("after the TTL: %+v", r)
	}
}

func TestTombstoneLooseModePicksUpExpired(t *testing.T) {
	tab := New(Config{Timeouts: Timeouts{TCPEstablished: time.Hour}})
	run(t, tab, handshake())
	r := tab.Track(seg(Reply, A, s1, c1, 0), t0+2*int64(time.Hour))
	if r.Verdict != NewConn || r.Idle != 2*time.Hour || r.Timeout != time.Hour || r.EndedState != StateEstablished {
		t.Fatalf("loose keep-alive after expiry: %+v", r)
	}
}

func TestTombstoneCapacity(t *testing.T) {
	tab := New(Config{Shards: 1, TombstoneCap: 8, Timeouts: Timeouts{UDPUnreplied: time.Second}})
	for i := range 20 {
		tab.Create(udp(cliAddr, srvAddr, uint16(1000+i), 53, 0), t0+int64(i), Meta{})
	}
	tab.Expire(t0 + 10*sec)
	if st := tab.Stats(); st.Tombstones != 8 || st.Expired != 20 {
		t.Fatalf("stats %+v, want 8 tombstones of 20 expired", st)
	}
	// The newest is kept (FIFO within a set); of 20 in 8 slots the oldest is gone.
	find := func(port uint16) bool {
		k := keyOf(udp(srvAddr, cliAddr, 53, port, 0))
		_, dir, ok := tab.shards[0].tombs.lookup(&k, k.hash(&tab.seed), t0+11*sec, int64(DefaultTombstoneTTL))
		return ok && dir == Reply
	}
	if !find(1019) || find(1000) {
		t.Fatalf("newest kept: %v, oldest kept: %v", find(1019), find(1000))
	}
	// Disabled tombstones: nothing remembered.
	tab = New(Config{TombstoneCap: -1, Strict: true})
	run(t, tab, handshake())
	tab.Expire(t0 + 100*int64(time.Hour))
	if r := tab.Track(seg(Original, A, c1, s1, 0), t0+100*int64(time.Hour)); r.Reason != reason.HandshakeNotCompleted {
		t.Fatal(r)
	}
}

func TestMassExpiryInBatches(t *testing.T) {
	var ended int
	tab := New(Config{Shards: 1, MaxConns: -1, TombstoneCap: -1,
		OnEnd: func(ConnInfo, EndCause) { ended++ }})
	const n = 3*expireBatch + 17
	for i := range n {
		tab.Create(udp(addr4(i), srvAddr, 1, 53, 0), t0+int64(i), Meta{})
	}
	if got := tab.Expire(t0 + 30*sec + n - 2); got != n-1 || ended != n-1 || tab.Len() != 1 {
		t.Fatalf("expired %d (OnEnd %d), len %d; want %d, 1 left", got, ended, tab.Len(), n-1)
	}
	checkInvariants(t, tab)
}

func TestCloseIfRuleChanged(t *testing.T) {
	var causes []EndCause
	tab := New(Config{Strict: true, OnEnd: func(_ ConnInfo, c EndCause) { causes = append(causes, c) }})
	run(t, tab, handshake())
	tab.Create(udp(cliAddr, srvAddr, 1, 53, 0), t0, Meta{Rule: 2})
	n := tab.CloseIf(func(ci *ConnInfo) bool { return ci.Meta.Rule == 7 }, EndRuleChanged)
	if n != 1 || tab.Len() != 1 || len(causes) != 1 || causes[0] != EndRuleChanged {
		t.Fatalf("closed %d, len %d, causes %v", n, tab.Len(), causes)
	}
	if r := tab.Track(seg(Original, A, c1, s1, 0), t0+sec); r.Verdict != Drop || r.Reason != reason.RuleChanged {
		t.Fatalf("packet of a rule-changed connection: %+v", r)
	}
	if n := tab.KeepIf(func(ci *ConnInfo) bool { return ci.Meta.Rule == 2 }, EndFlushed); n != 0 {
		t.Fatalf("KeepIf closed %d", n)
	}
	if n := tab.KeepIf(func(*ConnInfo) bool { return false }, EndFlushed); n != 1 || tab.Len() != 0 {
		t.Fatalf("flush closed %d", n)
	}
	if st := tab.Stats(); st.Flushed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOnEndMayCallBack(t *testing.T) {
	var tab *Table
	calls := 0
	tab = New(Config{Timeouts: Timeouts{UDPUnreplied: time.Second}, OnEnd: func(ci ConnInfo, _ EndCause) {
		calls++
		tab.Len()
		tab.Track(udp(ci.Src, ci.Dst, ci.SrcPort, ci.DstPort, 0), t0)
	}})
	tab.Create(udp(cliAddr, srvAddr, 1, 2, 0), t0, Meta{})
	tab.Expire(t0 + 2*sec)
	tab.Create(udp(cliAddr, srvAddr, 1, 2, 0), t0, Meta{})
	tab.Track(udp(cliAddr, srvAddr, 1, 2, 0), t0+5*sec) // lazily expired inside Track
	if calls != 2 {
		t.Fatalf("OnEnd called %d times", calls)
	}
}

func addr4(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) }

func TestEvictionUnassuredFirst(t *testing.T) {
	var evicted []ConnInfo
	tab := New(Config{Strict: true, MaxConns: 4, OnEnd: func(ci ConnInfo, c EndCause) {
		if c == EndEvicted {
			evicted = append(evicted, ci)
		}
	}})
	run(t, tab, handshake())                                   // assured TCP
	tab.Create(udp(addr4(1), srvAddr, 1, 53, 0), t0+1, Meta{}) // unreplied, older
	tab.Create(udp(addr4(2), srvAddr, 1, 53, 0), t0+2, Meta{}) // unreplied, newer
	tab.Create(udp(addr4(3), srvAddr, 1, 53, 0), t0+3, Meta{}) // replied below
	tab.Track(udp(srvAddr, addr4(3), 53, 1, 0), t0+4)          // assured
	if r := tab.Create(udp(addr4(4), srvAddr, 1, 53, 0), t0+5, Meta{}); r.Verdict != Accept {
		t.Fatalf("Create in a full table with unassured entries: %+v", r)
	}
	if len(evicted) != 1 || evicted[0].Src != addr4(1) {
		t.Fatalf("evicted %+v, want the oldest unassured (10.9.0.1)", evicted)
	}
	tab.Track(udp(srvAddr, addr4(2), 53, 1, 0), t0+6)
	tab.Track(udp(srvAddr, addr4(4), 53, 1, 0), t0+6)
	r := tab.Create(udp(addr4(5), srvAddr, 1, 53, 0), t0+7, Meta{})
	if r.Verdict != Drop || r.Reason != reason.TableFull || tab.Len() != 4 {
		t.Fatalf("Create with only assured entries: %+v, len %d", r, tab.Len())
	}
	if st := tab.Stats(); st.Evicted != 1 || st.TableFull != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Expired entries make room before anything is evicted.
	if r := tab.Create(udp(addr4(5), srvAddr, 1, 53, 0), t0+int64(24*time.Hour), Meta{}); r.Verdict != Accept {
		t.Fatalf("Create after everything timed out: %+v", r)
	}
	if st := tab.Stats(); st.Evicted != 1 {
		t.Fatalf("evicted instead of expiring: %+v", st)
	}
}

// A flood of new connections against a table full of half-open ones spread over
// 16 shards: each is admitted by evicting one, and the victims go exactly oldest
// first, though evictOne locks only the victim's shard.
func TestEvictionUnderFlood(t *testing.T) {
	const limit = 256
	var evicted []ConnInfo
	tab := New(Config{Strict: true, MaxConns: limit, Shards: 16, OnEnd: func(ci ConnInfo, c EndCause) {
		if c == EndEvicted {
			evicted = append(evicted, ci)
		}
	}})
	for i := range 4 * limit {
		if r := tab.Create(udp(addr4(i), srvAddr, 1, 53, 0), t0+int64(i), Meta{}); r.Verdict != Accept {
			t.Fatalf("connection %d: %+v", i, r)
		}
	}
	checkInvariants(t, tab)
	if tab.Len() != limit || len(evicted) != 3*limit {
		t.Fatalf("%d connections, %d evicted; want %d and %d", tab.Len(), len(evicted), limit, 3*limit)
	}
	for i, ci := range evicted {
		if ci.Src != addr4(i) {
			t.Fatalf("eviction %d took %v, want the oldest, %v", i, ci.Src, addr4(i))
		}
	}
}

// A candidate alone on its list and refreshed in place (a one-way stream keeps
// its list's head and tail) must not keep advertising when it was created: the
// idle candidate in the other shard is the one to evict.
func TestEvictionSparesActiveLoneCandidate(t *testing.T) {
	var evicted []ConnInfo
	tab := New(Config{Strict: true, MaxConns: 2, Shards: 2, Timeouts: Timeouts{UDPUnreplied: time.Hour}, OnEnd: func(ci ConnInfo, c EndCause) {
		if c == EndEvicted {
			evicted = append(evicted, ci)
		}
	}})
	// Two flows in different shards.
	shardOf := func(p *packet.Parsed) *shard {
		k := keyOf(p)
		return tab.shardOf(k.hash(&tab.seed))
	}
	active := udp(addr4(1), srvAddr, 1, 53, 0)
	var idle *packet.Parsed
	for i := 2; idle == nil; i++ {
		if p := udp(addr4(i), srvAddr, 1, 53, 0); shardOf(p) != shardOf(active) {
			idle = p
		}
	}
	tab.Create(active, t0, Meta{})
	tab.Create(idle, t0+10*sec, Meta{})
	for s := int64(1); s <= 100; s++ {
		tab.Track(active, t0+s*sec)
	}
	checkInvariants(t, tab)
	if r := tab.Create(udp(addr4(1000), srvAddr, 1, 53, 0), t0+101*sec, Meta{}); r.Verdict != Accept {
		t.Fatalf("Create in a full table with candidates: %+v", r)
	}
	if len(evicted) != 1 || evicted[0].Src != idle.Src {
		t.Fatalf("evicted %+v, want the idle %v", evicted, idle.Src)
	}
}

func TestAdaptiveTimeouts(t *testing.T) {
	tab := New(Config{AdaptiveStart: 10, AdaptiveEnd: 20, MaxConns: 100,
		Timeouts: Timeouts{UDPUnreplied: 100 * time.Second}})
	for i := range 15 {
		tab.Create(udp(addr4(i), srvAddr, 1, 53, 0), t0, Meta{})
	}
	// 15 connections: scale (20-15)/(20-10) = 0.5.
	var got []time.Duration
	tab.Range(func(ci ConnInfo) bool { got = append(got, ci.Timeout); return true })
	if len(got) != 15 || got[0] != 50*time.Second {
		t.Fatalf("timeouts %v, want 15 x 50s", got)
	}
	if n := tab.Expire(t0 + 50*sec - 1); n != 0 {
		t.Fatalf("expired %d before the scaled timeout", n)
	}
	// At 50 s the first expiry lowers n and so lengthens the others' timeouts:
	// pf's behaviour too. Everything goes eventually.
	if n := tab.Expire(t0 + 50*sec); n == 0 {
		t.Fatal("nothing expired at the scaled timeout")
	}
	tab.Expire(t0 + 100*sec)
	if tab.Len() != 0 {
		t.Fatalf("len %d", tab.Len())
	}
	// Below the start nothing is scaled.
	tab.Create(udp(addr4(1), srvAddr, 1, 53, 0), t0, Meta{})
	if ci := only(t, tab); ci.Timeout != 100*time.Second {
		t.Fatal(ci.Timeout)
	}
}

func TestPerSourceLimits(t *testing.T) {
	t.Run("concurrent", func(t *testing.T) {
		tab := New(Config{PerSourceConns: 2, Timeouts: Timeouts{UDPUnreplied: 10 * time.Second}})
		for i, want := range []reason.Reason{reason.None, reason.None, reason.ConnectionLimit} {
			r := tab.Create(udp(cliAddr, srvAddr, uint16(100+i), 53, 0), t0, Meta{})
			if r.Reason != want {
				t.Fatalf("conn %d: %+v, want %v", i, r, want)
			}
			if want == reason.ConnectionLimit && r.Limit != LimitConcurrent {
				t.Fatalf("conn %d refused by limit %v, want the concurrent one", i, r.Limit)
			}
		}
		if r := tab.Create(udp(srvAddr, cliAddr, 100, 53, 0), t0, Meta{}); r.Verdict != Accept {
			t.Fatalf("another source: %+v", r)
		}
		tab.Expire(t0 + 10*sec)
		if r := tab.Create(udp(cliAddr, srvAddr, 200, 53, 0), t0+10*sec, Meta{}); r.Verdict != Accept {
			t.Fatalf("after the others ended: %+v", r)
		}
		if st := tab.Stats(); st.ConnLimit != 1 {
			t.Fatal(st)
		}
	})
	t.Run("per minute", func(t *testing.T) {
		tab := New(Config{PerSourceRate: 3, Timeouts: Timeouts{UDPUnreplied: time.Second}})
		at := []int64{0, 10, 20, 30, 59_999_999_999 / sec, 60}
		want := []reason.Reason{reason.None, reason.None, reason.None, reason.ConnectionLimit, reason.ConnectionLimit, reason.None}
		for i := range at {
			r := tab.Create(udp(cliAddr, srvAddr, uint16(100+i), 53, 0), t0+at[i]*sec, Meta{})
			if r.Reason != want[i] {
				t.Fatalf("conn %d at %ds: %v, want %v", i, at[i], r.Reason, want[i])
			}
			if want[i] == reason.ConnectionLimit && r.Limit != LimitPerMinute {
				t.Fatalf("conn %d refused by limit %v, want the per-minute one", i, r.Limit)
			}
		}
		// The window is one minute from the first connection: 59.999999999 s is in it.
		tab2 := New(Config{PerSourceRate: 1})
		tab2.Create(udp(cliAddr, srvAddr, 1, 53, 0), t0, Meta{})
		if r := tab2.Create(udp(cliAddr, srvAddr, 2, 53, 0), t0+60*sec-1, Meta{}); r.Reason != reason.ConnectionLimit {
			t.Fatal(r)
		}
		if r := tab2.Create(udp(cliAddr, srvAddr, 3, 53, 0), t0+60*sec, Meta{}); r.Verdict != Accept {
			t.Fatal(r)
		}
	})
	t.Run("sources leave the map", func(t *testing.T) {
		tab := New(Config{PerSourceConns: 10, PerSourceRate: 100, Timeouts: Timeouts{UDPUnreplied: time.Second}})
		for i := range 50 {
			tab.Create(udp(addr4(i), srvAddr, 1, 53, 0), t0, Meta{})
		}
		if n := tab.src.sources(); n != 50 {
			t.Fatalf("%d sources", n)
		}
		tab.Expire(t0 + 30*sec) // connections gone, rate windows still open
		if n := tab.src.sources(); n != 50 {
			t.Fatalf("%d sources while their windows run", n)
		}
		tab.Expire(t0 + 61*sec)
		if n := tab.src.sources(); n != 0 {
			t.Fatalf("%d sources left", n)
		}
	})
}

func TestReconfigureKeepsEntries(t *testing.T) {
	tab := New(Config{Strict: true})
	run(t, tab, handshake())
	tab.Reconfigure(Config{Strict: false, Timeouts: Timeouts{TCPEstablished: 9000 * time.Second}})
	ci := only(t, tab)
	if ci.Timeout != 9000*time.Second || ci.State != StateEstablished {
		t.Fatal(ci)
	}
	// Loose now: a mid-stream packet of another connection may be picked up.
	other := seg(Original, A, 1, 2, 0)
	other.SrcPort = 1
	if r := tab.Track(other, t0); r.Verdict != NewConn {
		t.Fatal(r)
	}
}
