package logging

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent test; the Logger already
// serialises its writes, this only protects the test's own reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func dropAt(t time.Time, r reason.Reason, sport uint16) *PacketEvent {
	ev := seedEvent()
	ev.Time, ev.Reason = t, r
	ev.P.SrcPort = sport
	return ev
}

// TestLoggerDropSession plays a burst of drops through a Logger limited to one line
// per second with bursts of two, and checks the whole debug log.
func TestLoggerDropSession(t *testing.T) {
	var text, js bytes.Buffer
	l := New(Config{
		Debug:     Sink{Text: &text, JSON: &js},
		Location:  time.UTC,
		Drops:     DropsFor(reason.HandshakeNotCompleted, reason.OutOfWindow),
		DropRate:  1,
		DropBurst: 2,
	})
	t0 := utc("23/Sep/2012 11:50:42")
	l.Drop(dropAt(t0, reason.HandshakeNotCompleted, 1))
	l.Drop(dropAt(t0, reason.OutOfWindow, 2))
	l.Drop(dropAt(t0, reason.StateExpired, 3)) // not selected: neither written nor counted
	for i := 0; i < 5; i++ {
		l.Drop(dropAt(t0.Add(time.Duration(i)*100*time.Millisecond), reason.HandshakeNotCompleted, 10))
	}
	l.Drop(dropAt(t0.Add(500*time.Millisecond), reason.OutOfWindow, 11))
	l.Drop(dropAt(t0.Add(2*time.Second), reason.OutOfWindow, 4)) // resumes: summary first
	l.Drop(dropAt(t0.Add(2*time.Second), reason.OutOfWindow, 5)) // the burst refilled to 2
	l.Drop(dropAt(t0.Add(2100*time.Millisecond), reason.HandshakeNotCompleted, 12))
	l.Flush()
	l.Flush() // nothing left to report

	line := func(at string, why string, sport string) string {
		return "[23/Sep/2012 " + at + "] {pktdrop} packet dropped: " + why +
			" (from DMZ, proto:TCP, len:92, 10.2.0.2:" + sport + " -> 10.1.0.2:27779, flags:[ ACK PSH ], seq:2673204299 ack:173509679, win:27, tcplen:52)\n"
	}
	want := line("11:50:42", "3-way handshake not completed", "1") +
		line("11:50:42", "TCP segment out of window", "2") +
		"[23/Sep/2012 11:50:44] {pktdrop} 6 drop messages suppressed in the last 2 s (handshake_not_completed: 5, out_of_window: 1)\n" +
		line("11:50:44", "TCP segment out of window", "4") +
		line("11:50:44", "TCP segment out of window", "5") +
		"[23/Sep/2012 11:50:44] {pktdrop} 1 drop message suppressed in the last 1 s (handshake_not_completed: 1)\n"
	if got := text.String(); got != want {
		t.Errorf("debug log:\n%s\nwant:\n%s", got, want)
	}
	jsLines := strings.Split(strings.TrimSuffix(js.String(), "\n"), "\n")
	if len(jsLines) != 6 {
		t.Fatalf("%d JSON lines, want 6:\n%s", len(jsLines), js.String())
	}
	if m := checkJSONLine(t, []byte(jsLines[2]+"\n")); m["event"] != "suppressed" || m["suppressed"] != 6.0 {
		t.Errorf("JSON summary line: %v", m)
	}
	if s := l.Stats(); s != (Stats{Lines: 12, Suppressed: 7}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestLoggerEverySink(t *testing.T) {
	var debug, filter, conn, warn, errl, shared lockedBuffer
	l := New(Config{
		Debug:      Sink{Text: &debug},
		Filter:     Sink{Text: &filter, JSON: &shared},
		Connection: Sink{Text: &conn, JSON: &shared},
		Warning:    Sink{Text: &warn, JSON: &shared},
		Error:      Sink{Text: &errl, JSON: &shared},
		Location:   time.UTC,
		Drops:      AnyDrop(),
	})
	fev := &PacketEvent{Time: utc("16/Apr/2013 10:51:00"), Iface: "LAN", Outbound: true, Rule: "Local traffic",
		P: tcpPacket("195.39.55.4", "192.168.1.11", 41272, 3663, packet.ACK|packet.PSH, 1, 2, 64036, 47, 7)}
	cev := &ConnEvent{ID: 1, Proto: "TCP", Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"),
		Start: utc("16/Apr/2013 10:51:00"), End: utc("16/Apr/2013 10:51:05")}
	wev := ConnLimitWarning(utc("16/Apr/2013 11:00:00"), LimitPerMinute, netip.MustParseAddr("192.168.5.139"), 600)
	et := utc("16/Apr/2013 11:00:01")
	l.Drop(seedEvent())
	l.Filter(fev)
	l.Connection(cev)
	l.Warning(&wev)
	l.Error(et, "boom")

	checks := []struct {
		name string
		got  string
		want []byte
	}{
		{"debug", debug.String(), AppendDrop(nil, time.UTC, seedEvent())},
		{"filter", filter.String(), AppendFilter(nil, time.UTC, fev)},
		{"connection", conn.String(), AppendConnection(nil, time.UTC, cev)},
		{"warning", warn.String(), AppendWarning(nil, time.UTC, &wev)},
		{"error", errl.String(), AppendMessage(nil, time.UTC, et, "boom")},
		{"shared json", shared.String(), bytes.Join([][]byte{
			AppendFilterJSON(nil, time.UTC, fev), AppendConnectionJSON(nil, time.UTC, cev),
			AppendWarningJSON(nil, time.UTC, &wev), AppendMessageJSON(nil, time.UTC, et, "error", "boom")}, nil)},
	}
	for _, c := range checks {
		if c.got != string(c.want) {
			t.Errorf("%s log:\n got %q\nwant %q", c.name, c.got, c.want)
		}
	}
}

func TestLoggerDefaultsAndZeroTimes(t *testing.T) {
	var buf bytes.Buffer
	zone := time.FixedZone("X", -5*3600)
	old := time.Local
	time.Local = zone // Location nil means local time
	defer func() { time.Local = old }()
	l := New(Config{Debug: Sink{Text: &buf}, Error: Sink{Text: &buf}, Drops: AnyDrop()})
	l.now = func() time.Time { return time.Date(2020, 2, 3, 12, 0, 0, 0, time.UTC) }
	ev := seedEvent()
	ev.Time = time.Time{}
	l.Drop(ev)
	l.Error(time.Time{}, "disk full")
	if !ev.Time.IsZero() {
		t.Error("Drop modified the caller's event")
	}
	want := "[03/Feb/2020 07:00:00] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ," // -5 h
	if got := buf.String(); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "[03/Feb/2020 07:00:00] disk full\n") {
		t.Errorf("got:\n%s", got)
	}
}

func TestNilAndDisabledLogger(t *testing.T) {
	var l *Logger
	l.Drop(seedEvent())
	l.Filter(seedEvent())
	l.Connection(&ConnEvent{})
	l.Warning(&WarningEvent{})
	l.Error(time.Time{}, "x")
	l.Flush()
	if l.WantDrop(reason.Malformed) || l.Close() != nil || l.Err() != nil || l.Stats() != (Stats{}) {
		t.Error("nil Logger is not inert")
	}
	var buf bytes.Buffer
	l = New(Config{Debug: Sink{Text: &buf}}) // zero DropFilter: no drop shown
	l.Drop(seedEvent())
	if buf.Len() != 0 || l.WantDrop(reason.HandshakeNotCompleted) {
		t.Errorf("zero DropFilter wrote %q", buf.String())
	}
	l = New(Config{Drops: AnyDrop()}) // no debug sink
	if l.WantDrop(reason.HandshakeNotCompleted) {
		t.Error("WantDrop without a debug sink")
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

type countingCloser struct {
	bytes.Buffer
	closes int
}

func (c *countingCloser) Close() error { c.closes++; return nil }

func TestLoggerErrorsAndClose(t *testing.T) {
	fw := &failingWriter{}
	cc := &countingCloser{}
	l := New(Config{
		Debug:    Sink{Text: fw, JSON: cc},
		Filter:   Sink{Text: cc},
		Location: time.UTC, Drops: AnyDrop(),
	})
	l.Drop(seedEvent())
	if s := l.Stats(); s.WriteErrors != 1 || s.Lines != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if err := l.Close(); err == nil || err.Error() != "logging: disk full" {
		t.Errorf("Close = %v", err)
	}
	if cc.closes != 1 {
		t.Errorf("shared closer closed %d times", cc.closes)
	}
	l.Drop(seedEvent())
	l.Filter(seedEvent())
	if fw.n != 1 || l.Stats().Lines != 1 {
		t.Error("Logger wrote after Close")
	}
	if err := l.Close(); err == nil {
		t.Error("second Close forgot the error")
	}
}

// TestLoggerConcurrent runs every kind of event from several goroutines into one
// shared writer: with -race it checks the locking, and every line must be whole.
func TestLoggerConcurrent(t *testing.T) {
	var buf lockedBuffer
	l := New(Config{
		Debug: Sink{Text: &buf, JSON: &buf}, Filter: Sink{Text: &buf}, Connection: Sink{JSON: &buf},
		Location: time.UTC, Drops: AnyDrop(), DropRate: 1000, DropBurst: 50,
	})
	t0 := utc("23/Sep/2012 11:50:42")
	const workers, each = 4, 300
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				at := t0.Add(time.Duration(i) * time.Millisecond)
				l.Drop(dropAt(at, reason.Reason(1+i%(reason.Count-1)), uint16(w)))
				l.Filter(dropAt(at, reason.None, uint16(w)))
				l.Connection(&ConnEvent{ID: uint64(i), Proto: "UDP", End: at})
			}
		}()
	}
	wg.Wait()
	l.Close()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	s := l.Stats()
	if uint64(len(lines)) != s.Lines {
		t.Errorf("%d lines in the buffer, Stats says %d", len(lines), s.Lines)
	}
	var drops, summaries uint64
	for _, ln := range lines {
		switch {
		case strings.HasPrefix(ln, "{"):
			checkJSONLine(t, []byte(ln+"\n"))
		case strings.Contains(ln, "{pktdrop} packet dropped: "):
			drops++
		case strings.Contains(ln, "suppressed in the last"):
			summaries++
		case strings.Contains(ln, "] PERMIT '' packet from DMZ"):
		default:
			t.Fatalf("unexpected line %q", ln)
		}
	}
	if drops+s.Suppressed != workers*each {
		t.Errorf("%d drops written + %d suppressed != %d", drops, s.Suppressed, workers*each)
	}
	if s.Suppressed > 0 && summaries == 0 {
		t.Error("drops were suppressed but never reported")
	}
}

// The hot path: a drop the filter does not select, or the limiter refuses, must
// not allocate; an emitted one neither, thanks to the pooled buffer.
func TestDropAllocations(t *testing.T) {
	t0 := utc("23/Sep/2012 11:50:42")
	ev := seedEvent()
	filtered := New(Config{Debug: Sink{Text: io.Discard}, Drops: DropsFor(reason.StateExpired)})
	limited := New(Config{Debug: Sink{Text: io.Discard, JSON: io.Discard}, Drops: AnyDrop(), DropRate: 1, DropBurst: 1})
	limited.Drop(ev) // takes the only token at t0
	emitting := New(Config{Debug: Sink{Text: io.Discard, JSON: io.Discard}, Location: time.UTC, Drops: AnyDrop()})
	ev.Time = t0
	cases := []struct {
		name string
		l    *Logger
	}{{"filtered", filtered}, {"suppressed", limited}, {"emitted", emitting}}
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, func() { c.l.Drop(ev) }); n != 0 {
			t.Errorf("%s drop: %v allocations", c.name, n)
		}
	}
	if limited.Stats().Suppressed < 1000 {
		t.Errorf("suppressed = %d", limited.Stats().Suppressed)
	}
}

func BenchmarkDrop(b *testing.B) {
	ev := seedEvent()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"filtered", Config{Debug: Sink{Text: io.Discard}, Drops: DropsFor(reason.StateExpired)}},
		{"suppressed", Config{Debug: Sink{Text: io.Discard}, Drops: AnyDrop(), DropRate: 1e-9, DropBurst: 1}},
		{"text", Config{Debug: Sink{Text: io.Discard}, Location: time.UTC, Drops: AnyDrop()}},
		{"json", Config{Debug: Sink{JSON: io.Discard}, Location: time.UTC, Drops: AnyDrop()}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			l := New(c.cfg)
			b.ReportAllocs()
			for b.Loop() {
				l.Drop(ev)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			l := New(c.cfg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				e := *ev
				for pb.Next() {
					l.Drop(&e)
				}
			})
		})
	}
}

// The debug log's selection and rate change while the logger is in use.
func TestSetDrops(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Debug: Sink{Text: &buf}, Location: time.UTC})
	ev := PacketEvent{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Reason: reason.OutOfWindow}
	l.Drop(&ev)
	if buf.Len() != 0 || l.WantDrop(reason.OutOfWindow) {
		t.Fatalf("a logger showing no drops wrote %q", buf.String())
	}
	l.SetDrops(AnyDrop(), 1, 1)
	l.Drop(&ev)
	l.Drop(&ev) // over the rate of one a second: suppressed
	if n := strings.Count(buf.String(), "{pktdrop}"); n != 1 || l.Stats().Suppressed != 1 {
		t.Errorf("after SetDrops(any, 1/s): %d lines, %d suppressed\n%s", n, l.Stats().Suppressed, buf.String())
	}
	l.SetDrops(DropsFor(reason.StateExpired), 0, 0)
	if l.WantDrop(reason.OutOfWindow) || !l.WantDrop(reason.StateExpired) {
		t.Error("SetDrops(state_expired) did not narrow the selection")
	}
}
