package logging

import (
	"testing"
	"time"

	"keepstate/reason"
)

// TestDropLimiterOnEventTime runs the limiter on capture time: 1 line per second,
// bursts of 2. Nothing here reads the wall clock, so the outcome is exact.
func TestDropLimiterOnEventTime(t *testing.T) {
	t0 := utc("23/Sep/2012 11:50:42")
	type step struct {
		at      time.Duration
		r       reason.Reason
		allowed bool
		report  uint64 // Total of the summary handed over with an allowed line
	}
	steps := []step{
		{0, reason.HandshakeNotCompleted, true, 0},
		{0, reason.HandshakeNotCompleted, true, 0}, // burst of 2
		{0, reason.HandshakeNotCompleted, false, 0},
		{100 * time.Millisecond, reason.OutOfWindow, false, 0},
		{900 * time.Millisecond, reason.HandshakeNotCompleted, false, 0},
		{1000 * time.Millisecond, reason.StateExpired, true, 3}, // one token back: resumes, reports 3
		{1100 * time.Millisecond, reason.StateExpired, false, 0},
		{5 * time.Second, reason.StateExpired, true, 1},
		{5 * time.Second, reason.StateExpired, true, 0},
	}
	d := NewDropLimiter(1, 2)
	for i, s := range steps {
		var rep Suppressed
		got := d.Allow(t0.Add(s.at), s.r, &rep)
		if got != s.allowed || rep.Total != s.report {
			t.Fatalf("step %d (%v %v): allowed %v report %d, want %v %d", i, s.at, s.r, got, rep.Total, s.allowed, s.report)
		}
		if i == 5 {
			if rep.Counts[reason.HandshakeNotCompleted] != 2 || rep.Counts[reason.OutOfWindow] != 1 {
				t.Errorf("counts %v", rep.Counts)
			}
			if !rep.First.Equal(t0) || !rep.Last.Equal(t0.Add(900*time.Millisecond)) {
				t.Errorf("first %v last %v", rep.First, rep.Last)
			}
		}
	}
	var rep Suppressed
	d.Take(&rep)
	if rep.Total != 0 {
		t.Errorf("Take after a resumed line: %d pending", rep.Total)
	}
}

func TestDropLimiterTakeOnFlush(t *testing.T) {
	t0 := utc("23/Sep/2012 11:50:42")
	d := NewDropLimiter(0.5, 1)
	var rep Suppressed
	if !d.Allow(t0, reason.Malformed, &rep) {
		t.Fatal("first drop refused")
	}
	for i := 0; i < 4; i++ {
		if d.Allow(t0.Add(time.Duration(i)*100*time.Millisecond), reason.BadChecksum, &rep) {
			t.Fatalf("drop %d allowed", i)
		}
	}
	d.Take(&rep)
	if rep.Total != 4 || rep.Counts[reason.BadChecksum] != 4 || !rep.Last.Equal(t0.Add(300*time.Millisecond)) {
		t.Errorf("Take = %+v", rep)
	}
	d.Take(&rep)
	if rep.Total != 0 {
		t.Errorf("second Take = %d", rep.Total)
	}
}

func TestDropLimiterUnlimited(t *testing.T) {
	d := NewDropLimiter(0, 0)
	var rep Suppressed
	for i := 0; i < 10000; i++ {
		if !d.Allow(time.Time{}, reason.Malformed, &rep) {
			t.Fatalf("drop %d refused without a limit", i)
		}
	}
}

func TestSuppressedOrderAndWindow(t *testing.T) {
	t0 := utc("23/Sep/2012 11:50:42")
	s := Suppressed{First: t0}
	s.Counts[reason.OutOfWindow] = 34
	s.Counts[reason.HandshakeNotCompleted] = 1200
	s.Counts[reason.Malformed] = 34
	s.Counts[reason.StateExpired] = 35
	order, n := s.byCount()
	want := []reason.Reason{reason.HandshakeNotCompleted, reason.StateExpired, reason.OutOfWindow, reason.Malformed}
	if n != len(want) {
		t.Fatalf("n = %d", n)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Errorf("order[%d] = %v, want %v", i, order[i], want[i])
		}
	}
	windows := []struct {
		at   time.Duration
		want int64
	}{{0, 1}, {-time.Second, 1}, {time.Millisecond, 1}, {10 * time.Second, 10}, {10*time.Second + 1, 11}}
	for _, w := range windows {
		if got := s.window(t0.Add(w.at)); got != w.want {
			t.Errorf("window(+%v) = %d, want %d", w.at, got, w.want)
		}
	}
}

func suppressedGoldenCases() []goldenCase {
	t0 := utc("23/Sep/2012 11:50:42")
	many := &Suppressed{Total: 1234, First: t0, Last: t0.Add(9 * time.Second)}
	many.Counts[reason.HandshakeNotCompleted] = 1200
	many.Counts[reason.OutOfWindow] = 34
	one := &Suppressed{Total: 1, First: t0, Last: t0}
	one.Counts[reason.StateExpired] = 1
	return []goldenCase{
		{"suppressed_many",
			func(b []byte) []byte { return AppendSuppressed(b, time.UTC, t0.Add(10*time.Second), many) },
			func(b []byte) []byte { return AppendSuppressedJSON(b, time.UTC, t0.Add(10*time.Second), many) }},
		{"suppressed_one",
			func(b []byte) []byte { return AppendSuppressed(b, time.UTC, t0, one) },
			func(b []byte) []byte { return AppendSuppressedJSON(b, time.UTC, t0, one) }},
	}
}

func TestSuppressedLineExact(t *testing.T) {
	c := suppressedGoldenCases()[0]
	got := string(c.text(nil))
	want := "[23/Sep/2012 11:50:52] {pktdrop} 1234 drop messages suppressed in the last 10 s (handshake_not_completed: 1200, out_of_window: 34)\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
