package policy

import (
	"math/bits"
	"slices"
)

// Shadow is an enabled rule that no connection can ever reach: every query it
// matches is decided by rules before it, or it matches nothing at all.
type Shadow struct {
	Rule int // index of the rule, as Match numbers them
	// By are the earlier rules that decide everything it matches, in order;
	// empty when it matches nothing (an empty address group, say).
	By []int
}

// shadowBudget bounds the work of Shadowed, in bitset words compared. A rule set of
// a few hundred rules over a few hundred networks needs a small part of it; past
// it the rules not examined yet are not reported, so an answer is never wrong,
// only possibly incomplete.
const shadowBudget = 200_000_000

// Shadowed finds the enabled rules that can never match first. It reasons on the
// compiled dimensions, taken as independent: a rule is reported only if no
// combination of a source (address or ingress interface), a destination (address
// or egress interface, same address family) and a service reaches it before an
// earlier rule. Addresses and interfaces that cannot occur together in practice
// (a source address on the wrong interface) still count as possible, so what is
// reported is certain. complete is false when the work bound stopped the search.
func (r *Ruleset) Shadowed() (shadows []Shadow, complete bool) {
	s := r.rows
	W := s.words
	row := func(i uint32) []uint64 { return s.bits[int(i)*W : int(i+1)*W] }

	// The distinct rows of each side: an address interval's row ORed with an
	// interface's (the address or the interface matches the side), per family.
	sides := func(v4, v6 *intervals, anyRow uint32, ifRows []uint32) (fam [3][][]uint64) {
		add := func(f int, addr uint32) {
			for _, ir := range ifRows {
				x := slices.Clone(row(addr))
				for k, w := range row(ir) {
					x[k] |= w
				}
				fam[f] = append(fam[f], x)
			}
		}
		for _, v := range uniq(v4.vals) {
			add(0, v)
		}
		for _, v := range uniq(v6.vals) {
			add(1, v)
		}
		add(2, anyRow) // an address that is neither (matches only "any")
		for f := range fam {
			fam[f] = uniqRows(fam[f])
		}
		return fam
	}
	ifs := uniq(r.inRows)
	src := sides(&r.src4, &r.src6, r.anySrc, ifs)
	dst := sides(&r.dst4, &r.dst6, r.anyDst, uniq(r.outRows))
	var svc [][]uint64
	for i := range r.svc {
		for _, v := range uniq(r.svc[i].vals) {
			svc = append(svc, slices.Clone(row(v)))
		}
	}
	svc = uniqRows(svc)

	work := 0
	has := func(x []uint64, i int) bool { return x[i/64]&(1<<(i%64)) != 0 }
	with := func(rows [][]uint64, i int) (out [][]uint64) {
		for _, x := range rows {
			if has(x, i) {
				out = append(out, x)
			}
		}
		return out
	}
	sd := make([]uint64, W)
	for i := range r.rules {
		if !r.rules[i].Enabled {
			continue
		}
		reached, matches := false, false
		var by []int
		vs := with(svc, i)
		for f := 0; f < 3 && !reached; f++ {
			ss, ds := with(src[f], i), with(dst[f], i)
			for _, a := range ss {
				for _, b := range ds {
					for k := range sd {
						sd[k] = a[k] & b[k]
					}
					for _, c := range vs {
						work += W
						matches = true
						first := firstBit(sd, c)
						if first == i {
							reached = true
							break
						}
						if len(by) < 16 && !slices.Contains(by, first) {
							by = append(by, first)
						}
					}
					if reached || work > shadowBudget {
						break
					}
				}
				if reached || work > shadowBudget {
					break
				}
			}
		}
		if work > shadowBudget {
			return shadows, false
		}
		if !reached {
			if !matches {
				by = nil
			}
			slices.Sort(by)
			shadows = append(shadows, Shadow{Rule: i, By: by})
		}
	}
	return shadows, true
}

// firstBit is the lowest bit set in a AND b, or -1.
func firstBit(a, b []uint64) int {
	for k := range a {
		if x := a[k] & b[k]; x != 0 {
			return k*64 + bits.TrailingZeros64(x)
		}
	}
	return -1
}

func uniq(v []uint32) []uint32 {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

// uniqRows drops duplicate bitsets.
func uniqRows(rows [][]uint64) [][]uint64 {
	slices.SortFunc(rows, slices.Compare[[]uint64])
	return slices.CompactFunc(rows, slices.Equal[[]uint64])
}
