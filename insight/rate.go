package insight

import "time"

// rateWindow is how far back rates look: long enough to smooth a burst, short
// enough to be "the current traffic".
const (
	rateBucket  = time.Minute
	rateBuckets = 60
	rateWindow  = rateBucket * rateBuckets
)

// rate counts events in one-minute buckets over the last hour, on the events' own
// clock. It is a fixed array: 60 counters whatever the traffic.
type rate struct {
	counts [rateBuckets]uint64
	head   int64 // bucket number (time / rateBucket) of the latest event
	since  int64 // first event's time
}

func (r *rate) add(t int64, n uint64) {
	b := t / int64(rateBucket)
	if r.since == 0 {
		r.since, r.head = t, b
	}
	r.advance(b)
	if b < r.head-rateBuckets+1 {
		return // older than the window
	}
	r.counts[b%rateBuckets] += n
}

// advance moves the window's head to bucket b, zeroing the buckets it passes.
func (r *rate) advance(b int64) {
	if b <= r.head {
		return
	}
	for i := r.head + 1; i <= b && i <= r.head+rateBuckets; i++ {
		r.counts[i%rateBuckets] = 0
	}
	r.head = b
}

// perSecond is the events per second over the window ending at now (or since the
// first event, if that is later).
func (r *rate) perSecond(now int64) float64 {
	if r.since == 0 {
		return 0
	}
	r.advance(now / int64(rateBucket))
	var n uint64
	for _, c := range r.counts {
		n += c
	}
	span := min(time.Duration(now-r.since), rateWindow)
	if span < time.Second {
		span = time.Second
	}
	return float64(n) / span.Seconds()
}

// minute counts events over the last minute, in twelve 5-second buckets, on the
// events' own clock: for thresholds such as "100 in the last minute".
type minute struct {
	counts [12]uint64
	head   int64 // bucket number of the latest event
	any    bool
}

const minuteBucket = int64(5 * time.Second)

func (w *minute) add(t int64, n uint64) {
	b := t / minuteBucket
	w.advance(b)
	if b <= w.head-int64(len(w.counts)) {
		return
	}
	w.counts[b%int64(len(w.counts))] += n
}

func (w *minute) advance(b int64) {
	if !w.any {
		w.head, w.any = b, true
		return
	}
	for i := w.head + 1; i <= b && i <= w.head+int64(len(w.counts)); i++ {
		w.counts[i%int64(len(w.counts))] = 0
	}
	w.head = max(w.head, b)
}

// total is the events in the minute up to now.
func (w *minute) total(now int64) uint64 {
	if !w.any {
		return 0
	}
	w.advance(now / minuteBucket)
	var n uint64
	for _, c := range w.counts {
		n += c
	}
	return n
}
