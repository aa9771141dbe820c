package conntrack

import "testing"

// Blocks come out consecutive and within one chunk; entries are addressed the
// same by at and by peek, also after the chunk pointers outgrew the room made for
// them and were reallocated; peek refuses what is not in a published chunk.
func TestSlabBlocks(t *testing.T) {
	var s slab
	s.init(1) // room for one chunk pointer: growing past it republishes
	if s.peek(0) != nil {
		t.Fatal("peek found an entry in an empty slab")
	}
	seen := make(map[*entry]uint32)
	for b := range 3 * chunkLen / blockLen {
		first, ok := s.take()
		if !ok {
			t.Fatal("take refused a block")
		}
		if want := uint32(b * blockLen); first != want {
			t.Fatalf("block %d starts at %d, want %d", b, first, want)
		}
		if first>>chunkBits != (first+blockLen-1)>>chunkBits {
			t.Fatalf("block at %d straddles two chunks", first)
		}
		for i := first; i < first+blockLen; i++ {
			e := s.at(i)
			if p := s.peek(i); p != e {
				t.Fatalf("entry %d: peek %p, at %p", i, p, e)
			}
			if j, dup := seen[e]; dup {
				t.Fatalf("entries %d and %d share memory", j, i)
			}
			seen[e] = i
			e.idSeq = i + 1
		}
	}
	for e, i := range seen {
		if e.idSeq != i+1 || s.at(i) != e {
			t.Fatalf("entry %d moved or was overwritten after the chunk pointers grew", i)
		}
	}
	if s.peek(3*chunkLen) != nil || s.peek(maxEntries) != nil {
		t.Error("peek found an entry beyond the published chunks")
	}
}

// A full table under a flood of new connections must not sweep on every one:
// the per-source sweep runs at most once a second of table time and the full-table
// expiry at most once a millisecond (both again at once if time goes back).
func TestSweepsAreRateLimited(t *testing.T) {
	var l srcLimiter
	var seed hashSeed
	now := int64(1e18)
	// An idle source: its rate window ran out and it has no connection open.
	addIdleSource := func(b byte) {
		a := srcKey{src: [16]byte{15: b}}
		p := &l.parts[l.part(&seed, a)]
		if p.m == nil {
			p.m = make(map[srcKey]srcState)
		}
		p.m[a] = srcState{rateCount: 1, rateStart: now - rateWindow}
	}
	l.sweep(now)
	addIdleSource(1)
	l.sweep(now + sweepEvery - 1)
	if l.sources() != 1 {
		t.Error("swept again within a second")
	}
	l.sweep(now + sweepEvery)
	if l.sources() != 0 {
		t.Error("did not sweep after a second")
	}
	addIdleSource(2)
	l.sweep(now) // the clock went back: sweep, and count from there
	if l.sources() != 0 {
		t.Error("did not sweep when time went back")
	}

	var full pacer
	if !full.due(now, fullExpireEvery) || full.due(now+fullExpireEvery-1, fullExpireEvery) ||
		!full.due(now+fullExpireEvery, fullExpireEvery) || !full.due(now, fullExpireEvery) {
		t.Error("full-table expiry not limited to once a millisecond, or not at once when time goes back")
	}
}
