package policy

import (
	"math/bits"
	"net/netip"
)

// Query describes the first packet of a new connection.
type Query struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	ICMPType         uint8
	InIface          int // index into Ruleset.Interfaces(), -1 unknown
	OutIface         int // index into Ruleset.Interfaces(), -1 unknown
}

// Reverse is q about the other direction: addresses, ports and interfaces
// swapped. The ICMP type is dropped, as it belongs to one direction's packet.
func (q Query) Reverse() Query {
	return Query{Src: q.Dst, Dst: q.Src, Proto: q.Proto, SrcPort: q.DstPort, DstPort: q.SrcPort,
		InIface: q.OutIface, OutIface: q.InIface}
}

// Match returns the index of the first enabled rule matching q and its action, or
// -1 and the default action. An unknown interface (-1) matches no iface: or
// ifgroup: term; an invalid address matches only "any". It does not allocate.
func (r *Ruleset) Match(q *Query) (rule int, a Action) {
	s := r.rows
	sa := r.addrRow(&r.src4, &r.src6, r.anySrc, q.Src)
	da := r.addrRow(&r.dst4, &r.dst6, r.anyDst, q.Dst)
	ii := ifaceRow(r.inRows, q.InIface)
	oi := ifaceRow(r.outRows, q.OutIface)
	sv := r.svcRow(q)

	W, S := s.words, s.sumWords
	bsa, bii, bda, boi, bsv := int(sa)*W, int(ii)*W, int(da)*W, int(oi)*W, int(sv)*W
	ssa, sii, sda, soi, ssv := int(sa)*S, int(ii)*S, int(da)*S, int(oi)*S, int(sv)*S
	b, m := s.bits, s.sums
	for k := 0; k < S; k++ {
		// Words that can hold a match: non-zero on both address sides and the service.
		cand := (m[ssa+k] | m[sii+k]) & (m[sda+k] | m[soi+k]) & m[ssv+k]
		for cand != 0 {
			w := k*64 + bits.TrailingZeros64(cand)
			cand &= cand - 1
			x := (b[bsa+w] | b[bii+w]) & (b[bda+w] | b[boi+w]) & b[bsv+w]
			if x != 0 {
				i := w*64 + bits.TrailingZeros64(x)
				return i, r.rules[i].Action
			}
		}
	}
	return -1, r.defaultAction
}

func (r *Ruleset) addrRow(t4, t6 *intervals, anyRow uint32, a netip.Addr) uint32 {
	a = a.Unmap()
	switch {
	case a.Is4():
		return t4.find(addrKey(a))
	case a.Is6():
		return t6.find(addrKey(a))
	}
	return anyRow
}

func ifaceRow(rows []uint32, iface int) uint32 {
	if iface < 0 || iface+1 >= len(rows) {
		return 0
	}
	return rows[iface+1]
}

func (r *Ruleset) svcRow(q *Query) uint32 {
	var key uint64
	switch q.Proto {
	case uint8(ProtoTCP), uint8(ProtoUDP):
		key = uint64(q.DstPort)
	case uint8(ProtoICMP), uint8(ProtoICMPv6):
		key = uint64(q.ICMPType)
	}
	return r.svc[r.svcTable[q.Proto]].find(u128{0, key})
}

// Rule returns rule i (as Match numbers them, in configuration order). The value is
// shared: callers must not modify it.
func (r *Ruleset) Rule(i int) *Rule { return &r.rules[i] }

// NumRules is the number of rules, disabled ones included.
func (r *Ruleset) NumRules() int { return len(r.rules) }

// DefaultAction is the action of the fixed last rule.
func (r *Ruleset) DefaultAction() Action { return r.defaultAction }

// Stats describes the compiled form, for diagnostics and capacity planning.
type Stats struct {
	Rules, EnabledRules int
	Intervals           int // elementary intervals over every dimension
	DistinctRows        int // rule bitsets stored once each
	Bytes               int // memory held by the bitsets and interval tables
}

// Stats returns the size of the compiled ruleset.
func (r *Ruleset) Stats() Stats {
	st := Stats{Rules: len(r.rules), EnabledRules: r.nEnabled, DistinctRows: int(r.rows.n)}
	for _, t := range []*intervals{&r.src4, &r.src6, &r.dst4, &r.dst6} {
		st.Intervals += len(t.starts)
	}
	for i := range r.svc {
		st.Intervals += len(r.svc[i].starts)
	}
	st.Bytes = 8*(len(r.rows.bits)+len(r.rows.sums)) + 20*st.Intervals
	return st
}
