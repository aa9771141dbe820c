package replay

import (
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
	count, err uint64
	reasons    reason.Counters
}

// topTalkers keeps the connections with most drops in bounded memory with the
// Space-Saving algorithm (Metwally et al., 2005): when full, a new pair replaces the
// one with the smallest count and inherits it as its error bound. Any pair with more
// than total/capacity drops is guaranteed to be kept.
type topTalkers struct {
	capacity int
	m        map[pairKey]*tally
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
		return
	}
	if len(t.m) < t.capacity {
		e := &tally{count: 1}
		e.reasons[r] = 1
		t.m[k] = e
		return
	}
	// Replace the smallest. A linear scan is fine: it happens only for pairs not yet
	// held, the capacity is small, and drops are the rare path.
	var minK pairKey
	var minE *tally
	for k2, e := range t.m {
		if minE == nil || e.count < minE.count {
			minK, minE = k2, e
		}
	}
	delete(t.m, minK)
	e := &tally{count: minE.count + 1, err: minE.count}
	e.reasons[r] = 1
	t.m[k] = e
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
