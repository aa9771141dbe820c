package logging

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"keepstate/reason"
)

// DropLimiter decides which drop lines are written. Refused drops are counted per
// reason, so that the log says what it left out when it resumes.
//
// It runs on the events' own time, not the wall clock: a replay of yesterday's
// capture is limited exactly as the live traffic would have been.
type DropLimiter struct {
	mu      sync.Mutex
	lim     *rate.Limiter // nil: unlimited
	last    time.Time     // of the latest drop asked about: the limiter's clock
	pending Suppressed
}

// Suppressed is what a DropLimiter refused since it last reported.
type Suppressed struct {
	Total       uint64
	Counts      reason.Counters
	First, Last time.Time // times of the first and last refused drop
}

// NewDropLimiter allows perSecond drop lines on average with bursts of burst
// lines (at least 1). perSecond <= 0 means no limit.
func NewDropLimiter(perSecond float64, burst int) *DropLimiter {
	return &DropLimiter{lim: newRate(perSecond, burst)}
}

// newRate is the limiter NewDropLimiter describes: nil for no limit.
func newRate(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// SetRate changes the rate and burst from the latest drop on, as NewDropLimiter
// reads them; drops already refused stay counted for the next report.
func (d *DropLimiter) SetRate(perSecond float64, burst int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lim == nil || perSecond <= 0 {
		d.lim = newRate(perSecond, burst)
		return
	}
	d.lim.SetLimitAt(d.last, rate.Limit(perSecond))
	d.lim.SetBurstAt(d.last, max(burst, 1))
}

// Allow reports whether the line of a drop at time t for reason r may be written.
// When it may, and drops were refused before, their summary is moved into
// *report (report.Total > 0) to be written before the line. When it may not, the
// drop is counted and *report is left alone.
func (d *DropLimiter) Allow(t time.Time, r reason.Reason, report *Suppressed) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = t
	if d.lim != nil && !d.lim.AllowN(t, 1) {
		if d.pending.Total == 0 {
			d.pending.First = t
		}
		d.pending.Total++
		if int(r) < reason.Count {
			d.pending.Counts[r]++
		}
		d.pending.Last = t
		return false
	}
	if d.pending.Total > 0 {
		*report = d.pending
		d.pending = Suppressed{}
	}
	return true
}

// Take moves the pending summary into *report (report.Total == 0 if there was
// none), for Flush and Close.
func (d *DropLimiter) Take(report *Suppressed) {
	d.mu.Lock()
	*report = d.pending
	d.pending = Suppressed{}
	d.mu.Unlock()
}

// byCount returns the reasons with a non-zero count, highest count first, ties in
// reason order. It sorts a fixed array in place: no allocation.
func (s *Suppressed) byCount() (out [reason.Count]reason.Reason, n int) {
	for r := 0; r < reason.Count; r++ {
		if s.Counts[r] == 0 {
			continue
		}
		i := n
		for i > 0 && s.Counts[out[i-1]] < s.Counts[r] {
			out[i] = out[i-1]
			i--
		}
		out[i] = reason.Reason(r)
		n++
	}
	return out, n
}

// window is how long the suppression lasted up to at, in whole seconds rounded up
// and at least 1, so that a single refused drop reads "in the last 1 s".
func (s *Suppressed) window(at time.Time) int64 {
	d := at.Sub(s.First)
	secs := int64((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// AppendSuppressed appends the debug-log line that reports suppressed drops:
//
//	[23/Sep/2012 11:51:00] {pktdrop} 1234 drop messages suppressed in the last 10 s (handshake_not_completed: 1200, out_of_window: 34)
//
// at is the time the report is written: the drop that resumed logging, or the last
// suppressed drop on Flush.
func AppendSuppressed(dst []byte, loc *time.Location, at time.Time, s *Suppressed) []byte {
	dst = appendStamp(dst, at, orUTC(loc))
	dst = append(dst, " {pktdrop} "...)
	dst = appendUint(dst, s.Total)
	if s.Total == 1 {
		dst = append(dst, " drop message suppressed in the last "...)
	} else {
		dst = append(dst, " drop messages suppressed in the last "...)
	}
	dst = appendInt(dst, s.window(at))
	dst = append(dst, " s ("...)
	order, n := s.byCount()
	for i, r := range order[:n] {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, r.String()...)
		dst = append(dst, ": "...)
		dst = appendUint(dst, s.Counts[r])
	}
	return append(dst, ")\n"...)
}

// AppendSuppressedJSON appends the JSON form of the suppression report (log
// "debug", event "suppressed").
func AppendSuppressedJSON(dst []byte, loc *time.Location, at time.Time, s *Suppressed) []byte {
	j := beginJSON(dst, at, loc, "debug")
	j.str("event", "suppressed")
	j.uint("suppressed", s.Total)
	j.int("window_s", s.window(at))
	j.key("by_reason")
	j.b = append(j.b, '{')
	order, n := s.byCount()
	for _, r := range order[:n] {
		j.uint(r.String(), s.Counts[r])
	}
	j.b = append(j.b, '}')
	return j.end()
}
