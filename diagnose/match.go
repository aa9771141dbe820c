package diagnose

import (
	"cmp"
	"slices"
	"time"
)

// ClockOffset is how far capture B's clock runs ahead of capture A's, as estimated
// from the packets seen on both sides.
//
// A packet going from A to B shows the offset plus the transit time, one going from
// B to A the offset minus it. When some connection crossed both ways, the offset is
// the median over such connections of the mean of both directions' median
// differences (the transit cancels out, as in NTP, if the path is as fast both
// ways) and Transit is half their difference. Otherwise Offset is the plain median
// and includes the transit.
type ClockOffset struct {
	Offset time.Duration `json:"offset_ns"`
	// Transit is the one-way time between the capture points; 0 when it could
	// not be told apart from the offset.
	Transit time.Duration `json:"transit_ns"`
	// Pairs is how many unambiguous packet pairs (a key seen exactly once on each
	// side) the first estimate, used to pair packets, is the median of; 0 when
	// there were none and every first occurrence was used instead.
	Pairs int `json:"pairs"`
	// Conns is how many connections that crossed both ways the final estimate
	// comes from (0: it is the first estimate).
	Conns int `json:"connections"`
	// Spread is the distance between the 5th and 95th percentiles of the matched
	// pairs' time differences: jitter, queueing and clock drift over the capture.
	Spread time.Duration `json:"spread_ns"`
}

// pairing says, for each packet of A and of B, the index of its twin on the other
// side, or -1.
type pairing struct {
	offset ClockOffset
	twinA  []int // index into B's packets
	twinB  []int // index into A's packets
}

// defaultMaxSkew is how far apart, once the clock offset is removed, two packets
// with the same key may be and still count as one packet seen twice.
const defaultMaxSkew = 2 * time.Second

// matchCaptures pairs the packets of a and b. Packets are paired by key; the clock
// offset is the median time difference of keys that occur exactly once on each
// side; then, for every key, the occurrences on both sides are paired in time order
// when they lie within maxSkew of each other after the offset is removed
// (retransmissions with an unchanged IP id are told apart by order and time).
func matchCaptures(a, b []Packet, maxSkew time.Duration) pairing {
	idxA := indexByKey(a)
	idxB := indexByKey(b)

	var deltas []int64
	for k, la := range idxA {
		if lb := idxB[k]; len(la) == 1 && len(lb) == 1 {
			deltas = append(deltas, b[lb[0]].Time-a[la[0]].Time)
		}
	}
	pairs := len(deltas)
	if pairs == 0 {
		for k, la := range idxA {
			if lb := idxB[k]; len(lb) > 0 {
				deltas = append(deltas, b[lb[0]].Time-a[la[0]].Time)
			}
		}
	}
	offset := median(deltas)

	pr := pairing{twinA: filled(len(a), -1), twinB: filled(len(b), -1)}
	pr.offset = ClockOffset{Offset: time.Duration(offset), Pairs: pairs}
	tol := int64(maxSkew)
	var matched []int64
	for k, la := range idxA {
		lb := idxB[k]
		i, j := 0, 0
		for i < len(la) && j < len(lb) {
			ta, tb := a[la[i]].Time, b[lb[j]].Time-offset
			switch {
			case abs(tb-ta) <= tol:
				pr.twinA[la[i]], pr.twinB[lb[j]] = lb[j], la[i]
				matched = append(matched, tb+offset-ta)
				i++
				j++
			case tb < ta:
				j++
			default:
				i++
			}
		}
	}
	if len(matched) > 0 {
		slices.Sort(matched)
		lo, hi := matched[len(matched)*5/100], matched[(len(matched)-1)*95/100]
		pr.offset.Spread = time.Duration(hi - lo)
	}
	return pr
}

// indexByKey lists, per key, the indexes of the packets carrying it in time order
// (captures are in time order; equal keys keep file order).
func indexByKey(ps []Packet) map[matchKey][]int {
	m := make(map[matchKey][]int, len(ps))
	for i := range ps {
		m[ps[i].Key] = append(m[ps[i].Key], i)
	}
	for _, l := range m {
		if len(l) > 1 {
			slices.SortStableFunc(l, func(x, y int) int { return cmp.Compare(ps[x].Time, ps[y].Time) })
		}
	}
	return m
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return v[n/2-1] + (v[n/2]-v[n/2-1])/2
}

func filled(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// refineOffset re-estimates the clock offset from connections that crossed both
// ways (see ClockOffset). Per connection, deltas holds the B-minus-A time
// differences of its crossed packets per direction (0: from the lower endpoint).
func refineOffset(c *ClockOffset, conns [][2][]int64) {
	var mids, halves []int64
	for _, d := range conns {
		if len(d[0]) == 0 || len(d[1]) == 0 {
			continue
		}
		m0, m1 := median(d[0]), median(d[1])
		mids = append(mids, m0+(m1-m0)/2)
		halves = append(halves, abs(m1-m0)/2)
	}
	if len(mids) == 0 {
		return
	}
	c.Offset = time.Duration(median(mids))
	c.Transit = time.Duration(median(halves))
	c.Conns = len(mids)
}
