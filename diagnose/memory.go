package diagnose

import (
	"cmp"
	"slices"
	"time"
)

// lifetime is one connection as the table holds it: from its first packet until
// its last packet plus the timeout of the state it was left in. established says
// that state is governed by the timeout being advised, so its linger varies.
type lifetime struct {
	first, last int64
	linger      time.Duration // fixed linger, when !established
	established bool
}

// peakTracked is the largest number of connections the table holds at once when
// connections left established linger for timeout: a sweep over the intervals
// [first, last + linger]. Intervals that only touch do not overlap.
func peakTracked(ls []lifetime, timeout time.Duration) int {
	type event struct {
		t     int64
		delta int
	}
	ev := make([]event, 0, 2*len(ls))
	for _, l := range ls {
		linger := l.linger
		if l.established {
			linger = timeout
		}
		ev = append(ev, event{l.first, +1}, event{l.last + int64(linger), -1})
	}
	// At equal times ends come first: a connection that ends as another begins
	// does not hold memory alongside it.
	slices.SortFunc(ev, func(a, b event) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.delta, b.delta)
	})
	cur, peak := 0, 0
	for _, e := range ev {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// MemPoint is the memory a timeout implies for the capture's traffic.
type MemPoint struct {
	TimeoutS  int64   `json:"timeout_s"`
	PeakConns int     `json:"peak_connections"`
	MiB       float64 `json:"mib"`
}

func memPoint(ls []lifetime, timeout time.Duration, bytesPerConn float64) MemPoint {
	peak := peakTracked(ls, timeout)
	return MemPoint{TimeoutS: int64(timeout / time.Second), PeakConns: peak, MiB: float64(peak) * bytesPerConn / (1 << 20)}
}

// memoryCurve samples the implied memory at n+1 timeouts from 0 to upTo, with
// the given extra timeouts included, sorted and without duplicates.
func memoryCurve(ls []lifetime, upTo time.Duration, n int, bytesPerConn float64, extra ...time.Duration) []MemPoint {
	ts := append([]time.Duration(nil), extra...)
	for i := 0; i <= n; i++ {
		ts = append(ts, (upTo * time.Duration(i) / time.Duration(n)).Truncate(time.Second))
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	out := make([]MemPoint, 0, len(ts))
	for _, t := range ts {
		out = append(out, memPoint(ls, t, bytesPerConn))
	}
	return out
}
