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
