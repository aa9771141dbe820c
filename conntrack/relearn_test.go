package conntrack

import (
	"bytes"
	"testing"
	"time"

	"keepstate/reason"
)

// restored returns a strict table holding the test connection as a snapshot
// left it after the handshake and one exchange, restored at t0+10s; the
// connection's next numbers then were c1+100 (client) and s1+200 (server).
func restored(t *testing.T) *Table {
	t.Helper()
	cfg := Config{Strict: true}
	tab := New(cfg)
	run(t, tab, append(handshake(),
		step{p: seg(Original, PA, c1, s1, 100), verdict: Accept, state: StateEstablished},
		step{p: seg(Reply, PA, s1, c1+100, 200), verdict: Accept, state: StateEstablished},
		step{p: seg(Original, A, c1+100, s1+200, 0), verdict: Accept, state: StateEstablished},
	))
	var buf bytes.Buffer
	if err := tab.WriteSnapshot(&buf, t0+sec); err != nil {
		t.Fatal(err)
	}
	back := New(cfg)
	if err := back.ReadSnapshot(&buf, t0+10*sec); err != nil {
		t.Fatal(err)
	}
	return back
}

// at is a time after the restore.
func at(d time.Duration) time.Duration { return 10*time.Second + d }

// Sequence numbers moved while no table watched: 1.5 GB from the client, 700 MB
// from the server.
const (
	cliMoved = c1 + 100 + 1_500_000_000
	srvMoved = s1 + 200 + 700_000_000
)

// TestRestoredConnectionSurvivesUnseenSegments: a connection restored from a
// snapshot carries on through segments the table never saw, in both directions,
// whichever side speaks first; it keeps its state, rule and handshake history (it
// is no pickup: no new connection, assured, the established timeout), and once
// both sides were seen its windows are enforced again.
func TestRestoredConnectionSurvivesUnseenSegments(t *testing.T) {
	for _, serverFirst := range []bool{true, false} {
		tab := restored(t)
		created := tab.Stats().Created
		first := []step{
			{p: seg(Original, PA, cliMoved, srvMoved, 50), at: at(0), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, srvMoved, cliMoved+50, 80), at: at(0), verdict: Accept, state: StateEstablished},
		}
		if serverFirst {
			first = []step{
				{p: seg(Reply, PA, srvMoved, cliMoved, 80), at: at(0), verdict: Accept, state: StateEstablished},
				{p: seg(Original, PA, cliMoved, srvMoved+80, 50), at: at(0), verdict: Accept, state: StateEstablished},
			}
		}
		rs := run(t, tab, first)
		if tab.Stats().Created != created || rs[0].ID != rs[1].ID {
			t.Fatalf("server first %v: the restored connection was picked up anew", serverFirst)
		}
		var ci ConnInfo
		tab.Range(func(c ConnInfo) bool { ci = c; return false })
		if !ci.Assured || ci.Meta.Rule != 7 || ci.Timeout != DefaultTimeouts().TCPEstablished || tab.Len() != 1 {
			t.Fatalf("server first %v: restored connection %+v", serverFirst, ci)
		}
		// Relearned: the windows hold again, in both directions.
		run(t, tab, []step{
			{p: seg(Original, PA, cliMoved+50, srvMoved+80, 10), at: at(time.Second), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, A, srvMoved+80, cliMoved+60, 0), at: at(time.Second), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, cliMoved+60+1<<30, srvMoved+80, 10), at: at(time.Second), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Reply, PA, srvMoved+80+1<<30, cliMoved+60, 10), at: at(time.Second), verdict: Drop, reason: reason.OutOfWindow},
		})
	}
}

// A restored table lets in only what it held: strict mode stays strict for
// every other tuple.
func TestRestoredTableStaysStrict(t *testing.T) {
	tab := restored(t)
	other := seg(Original, PA, 42, 43, 10)
	other.SrcPort = cliPort + 1
	run(t, tab, []step{{p: other, at: at(0), verdict: Drop, reason: reason.HandshakeNotCompleted}})
}

// While it relearns, a restored connection's RST or FIN is checked against what
// the other side acknowledged, never taken on trust.
func TestRelearningChecksRSTAndFIN(t *testing.T) {
	stillOpen := func(t *testing.T, tab *Table) {
		t.Helper()
		if tab.Len() != 1 {
			t.Fatal("the connection was closed")
		}
		tab.Range(func(c ConnInfo) bool {
			if c.State != StateEstablished {
				t.Errorf("state %v, want ESTABLISHED", c.State)
			}
			return true
		})
	}
	t.Run("RST before either side spoke is dropped", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{{p: seg(Original, RA, cliMoved, srvMoved, 0), at: at(0), verdict: Drop, reason: reason.OutOfWindow}})
		stillOpen(t, tab)
		// The hosts resynchronise: the server speaks, the client's RST then
		// answers at exactly what the server acknowledged, and closes.
		run(t, tab, []step{
			{p: seg(Reply, PA, srvMoved, cliMoved, 10), at: at(time.Second), verdict: Accept, state: StateEstablished},
			{p: seg(Original, R, cliMoved, 0, 0), at: at(time.Second), verdict: Accept, state: StateClose},
		})
	})
	t.Run("RST outside what the other side acknowledged is dropped", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{
			{p: seg(Reply, PA, srvMoved, cliMoved, 10), at: at(0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, R, cliMoved+1<<30, 0, 0), at: at(0), verdict: Drop, reason: reason.OutOfWindow},
		})
		stillOpen(t, tab)
	})
	t.Run("RST in the window but not exact passes and changes nothing", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{
			{p: seg(Reply, PA, srvMoved, cliMoved, 10), at: at(0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, R, cliMoved+1000, 0, 0), at: at(0), verdict: Accept, state: StateEstablished},
		})
		stillOpen(t, tab)
		if n := tab.Stats().RSTInexact; n != 1 {
			t.Errorf("RSTInexact %d", n)
		}
	})
	t.Run("RST from a side seen since the restore is checked strictly", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{
			{p: seg(Original, PA, cliMoved, srvMoved, 10), at: at(0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, R, cliMoved+10+1<<30, 0, 0), at: at(0), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Original, R, cliMoved+10, 0, 0), at: at(0), verdict: Accept, state: StateClose},
		})
	})
	t.Run("FIN before either side spoke passes and changes nothing", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{{p: seg(Original, FA, cliMoved, srvMoved, 0), at: at(0), verdict: Accept, state: StateEstablished}})
		stillOpen(t, tab)
		// The server acknowledges it and closes its side: the close goes on.
		run(t, tab, []step{
			{p: seg(Reply, A, srvMoved, cliMoved+1, 0), at: at(time.Second), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, FA, srvMoved, cliMoved+1, 0), at: at(time.Second), verdict: Accept, state: StateFinWait},
		})
	})
	t.Run("FIN outside what the other side acknowledged changes nothing", func(t *testing.T) {
		tab := restored(t)
		run(t, tab, []step{
			{p: seg(Reply, PA, srvMoved, cliMoved, 10), at: at(0), verdict: Accept, state: StateEstablished},
			// Beyond the window: dropped. Older than it: the receiver discards
			// it (a late retransmission), so it passes, but closes nothing.
			{p: seg(Original, FA, cliMoved+1<<30, srvMoved+10, 0), at: at(0), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Original, FA, cliMoved-1<<30, srvMoved+10, 0), at: at(0), verdict: Accept, state: StateEstablished},
		})
		stillOpen(t, tab)
		run(t, tab, []step{{p: seg(Original, FA, cliMoved, srvMoved+10, 0), at: at(0), verdict: Accept, state: StateFinWait}})
	})
}

// A connection restored while it waits for its SYN-ACK keeps its windows: the
// SYN-ACK must acknowledge the SYN, as without a restore. One restored after its
// SYN-ACK relearns: the handshake's last ACK and data may have passed unseen.
func TestRestoredHandshake(t *testing.T) {
	badSynAck := seg(Reply, SA, srvISN, cliISN+1+1<<20, 0)
	restore := func(t *testing.T, steps []step) *Table {
		t.Helper()
		tab := New(Config{Strict: true})
		run(t, tab, steps)
		var buf bytes.Buffer
		if err := tab.WriteSnapshot(&buf, t0+sec); err != nil {
			t.Fatal(err)
		}
		back := New(Config{Strict: true})
		if err := back.ReadSnapshot(&buf, t0+2*sec); err != nil {
			t.Fatal(err)
		}
		return back
	}
	t.Run("never restored", func(t *testing.T) {
		run(t, New(Config{Strict: true}), append(handshake()[:1], step{p: badSynAck, verdict: Drop, reason: reason.OutOfWindow}))
	})
	t.Run("restored after the SYN", func(t *testing.T) {
		run(t, restore(t, handshake()[:1]), []step{
			{p: badSynAck, at: 2 * time.Second, verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Reply, SA, srvISN, cliISN+1, 0), at: 2 * time.Second, verdict: Accept, state: StateSynRecv},
			{p: seg(Original, A, cliISN+1, srvISN+1, 0), at: 2 * time.Second, verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, cliISN+1+1<<30, srvISN+1, 10), at: 2 * time.Second, verdict: Drop, reason: reason.OutOfWindow},
		})
	})
	t.Run("restored after the SYN-ACK", func(t *testing.T) {
		run(t, restore(t, handshake()[:2]), []step{
			{p: seg(Original, PA, cliISN+1+1_000_000, srvISN+1+20_000, 100), at: 2 * time.Second, verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, srvISN+1+20_000, cliISN+1+1_000_100, 100), at: 2 * time.Second, verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, cliISN+1+1<<30, srvISN+1+20_100, 10), at: 2 * time.Second, verdict: Drop, reason: reason.OutOfWindow},
		})
	})
}
