package policy

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an address (or port) as an unsigned number, so that IPv4 and IPv6 share
// one interval code. IPv4 addresses live in lo.
type u128 struct{ hi, lo uint64 }

func (x u128) cmp(y u128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

func (x u128) less(y u128) bool { return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo) }

func (x u128) inc() u128 {
	lo, carry := bits.Add64(x.lo, 1, 0)
	return u128{x.hi + carry, lo}
}

var (
	maxV4   = u128{0, 0xffffffff}
	maxV6   = u128{^uint64(0), ^uint64(0)}
	maxPort = u128{0, 0xffff}
)

// addrKey maps an address to its number; a is IPv4 (not mapped) or IPv6.
func addrKey(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	return u128{hi, lo}
}

// prefixBounds returns the first and last address of p as numbers.
func prefixBounds(p netip.Prefix) (lo, hi u128) {
	p = p.Masked()
	lo = addrKey(p.Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	switch {
	case hostBits == 0:
		hi = lo
	case hostBits >= 64:
		hi = u128{lo.hi | (^uint64(0) >> (128 - hostBits)), ^uint64(0)}
	default:
		hi = u128{lo.hi, lo.lo | (^uint64(0) >> (64 - hostBits))}
	}
	return lo, hi
}

// span is an inclusive range of keys that one rule (or interface) covers.
type span struct {
	lo, hi u128
	id     int
}

// intervals splits a key space into elementary intervals; starts[0] is always 0 and
// interval i covers [starts[i], starts[i+1]). vals[i] is the interval's row (or
// owner) index.
type intervals struct {
	starts []u128
	vals   []uint32
}

// find returns the value of the interval holding k, by binary search.
func (t *intervals) find(k u128) uint32 {
	lo, hi := 0, len(t.starts) // invariant: starts[lo] <= k, starts[hi] > k (virtual)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if k.less(t.starts[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return t.vals[lo]
}

// sweep walks the elementary intervals of spans over [0, max] in order. At each
// boundary it reports every id whose covering count changed (update: the count is now
// zero or not) and then asks value for the interval's value. Adjacent intervals with
// the same value are merged.
func sweep(spans []span, max u128, nids int, update func(id int, covered bool), value func() uint32) intervals {
	type event struct {
		at    u128
		id    int
		delta int32
	}
	events := make([]event, 0, 2*len(spans))
	for _, s := range spans {
		events = append(events, event{s.lo, s.id, +1})
		if s.hi != max {
			events = append(events, event{s.hi.inc(), s.id, -1})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return a.at.cmp(b.at) })
	active := make([]int32, nids)
	var t intervals
	emit := func(at u128) {
		v := value()
		if n := len(t.vals); n > 0 && t.vals[n-1] == v {
			return
		}
		t.starts = append(t.starts, at)
		t.vals = append(t.vals, v)
	}
	i := 0
	if len(events) == 0 || events[0].at != (u128{}) {
		emit(u128{})
	}
	for i < len(events) {
		at := events[i].at
		for i < len(events) && events[i].at == at {
			e := events[i]
			before := active[e.id] > 0
			active[e.id] += e.delta
			if after := active[e.id] > 0; after != before {
				update(e.id, after)
			}
			i++
		}
		emit(at)
	}
	return t
}

// rowStore interns rule bitsets: identical rows (very common: every gap between
// hosts matches the same "any" rules) are stored once. Each row also has a summary
// bitset with one bit per non-zero word, so a query skips empty words of the rows.
type rowStore struct {
	words, sumWords int
	n               uint32 // rows stored
	bits, sums      []uint64
	index           map[uint64][]uint32
}

func newRowStore(nrules int) *rowStore {
	w := (nrules + 63) / 64
	s := &rowStore{words: w, sumWords: (w + 63) / 64, index: map[uint64][]uint32{}}
	s.intern(make([]uint64, w)) // row 0: matches nothing
	return s
}

func (s *rowStore) row(i uint32) []uint64 {
	return s.bits[int(i)*s.words : int(i+1)*s.words]
}

func (s *rowStore) intern(row []uint64) uint32 {
	h := uint64(14695981039346656037)
	for _, w := range row {
		h = (h ^ w) * 1099511628211
		h ^= h >> 29
	}
	for _, i := range s.index[h] {
		if slices.Equal(s.row(i), row) {
			return i
		}
	}
	i := s.n
	s.n++
	s.bits = append(s.bits, row...)
	sum := make([]uint64, s.sumWords)
	for w, x := range row {
		if x != 0 {
			sum[w/64] |= 1 << (w % 64)
		}
	}
	s.sums = append(s.sums, sum...)
	s.index[h] = append(s.index[h], i)
	return i
}

// ruleRows builds interval rows for one dimension from per-rule spans.
func (s *rowStore) ruleRows(spans []span, max u128, nrules int) intervals {
	cur := make([]uint64, s.words)
	update := func(r int, covered bool) {
		if covered {
			cur[r/64] |= 1 << (r % 64)
		} else {
			cur[r/64] &^= 1 << (r % 64)
		}
	}
	return sweep(spans, max, nrules, update, func() uint32 { return s.intern(cur) })
}
