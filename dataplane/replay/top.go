package replay

import (
	"container/heap"
	"net/netip"
	"sort"

	"keepstate/packet"
	"keepstate/reason"
)

// ConnDrops is one connection of the "most drops" list.
type ConnDrops struct {
	Proto   string            `json:"proto"`
	A       string            `json:"a"` // lower endpoint of the pair, "addr:port"
	B       string            `json:"b"`
	Drops   uint64            `json:"drops"`
	Reasons map[string]uint64 `json:"reasons"`
	// Error is the most the count may overstate: the tally is bounded, and an entry
	// that replaced another inherits its count (Space-Saving).
	Error uint64 `json:"error,omitempty"`
}

// pairKey names a connection independently of direction.
type pairKey struct {
	a, b  netip.AddrPort
	proto packet.Proto
}

func pairOf(p *packet.Parsed) pairKey {
	a := netip.AddrPortFrom(p.Src, p.SrcPort)
	b := netip.AddrPortFrom(p.Dst, p.DstPort)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return pairKey{a: a, b: b, proto: p.Proto}
}

type tally struct {
	key        pairKey
	count, err uint64
	reasons    reason.Counters
	pos        int // index in the heap
}

// topTalkers keeps the connections with most drops in bounded memory with the
// Space-Saving algorithm (Metwally et al., 2005): when full, a new pair replaces the
// one with the smallest count and inherits it as its error bound. Any pair with more
// than total/capacity drops is guaranteed to be kept. The tallies form a min-heap
// by count, so that finding the smallest costs O(log capacity): when many
// connections are dropped (a full table, a scan) nearly every drop is a new pair.
type topTalkers struct {
	capacity int
	m        map[pairKey]*tally
	h        tallyHeap
}

func topCapacity(n int) int { return max(64, 32*n) }

func newTopTalkers(capacity int) *topTalkers {
	return &topTalkers{capacity: capacity, m: make(map[pairKey]*tally, capacity)}
}

func (t *topTalkers) add(p *packet.Parsed, r reason.Reason) {
	k := pairOf(p)
	if e, ok := t.m[k]; ok {
		e.count++
		e.reasons[r]++
		heap.Fix(&t.h, e.pos)
		return
	}
	if len(t.m) < t.capacity {
		e := &tally{key: k, count: 1}
		e.reasons[r] = 1
		t.m[k] = e
		heap.Push(&t.h, e)
		return
	}
	// Replace the smallest, in place.
	e := t.h[0]
	delete(t.m, e.key)
	*e = tally{key: k, count: e.count + 1, err: e.count, pos: e.pos}
	e.reasons[r] = 1
	t.m[k] = e
	heap.Fix(&t.h, e.pos)
}

// tallyHeap is a min-heap of tallies by count (container/heap).
type tallyHeap []*tally

func (h tallyHeap) Len() int           { return len(h) }
func (h tallyHeap) Less(i, j int) bool { return h[i].count < h[j].count }
func (h tallyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *tallyHeap) Push(x any) {
	e := x.(*tally)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *tallyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (t *topTalkers) top(n int) []ConnDrops {
	out := make([]ConnDrops, 0, len(t.m))
	for k, e := range t.m {
		out = append(out, ConnDrops{
			Proto: k.proto.String(), A: k.a.String(), B: k.b.String(),
			Drops: e.count, Error: e.err, Reasons: e.reasons.Map(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Drops != out[j].Drops {
			return out[i].Drops > out[j].Drops
		}
		return out[i].A+out[i].B < out[j].A+out[j].B
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
