package replay

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"keepstate/packet"
	"keepstate/reason"
)

// The bounded tally keeps every connection with more than total/capacity drops,
// with its exact count when it never left (Space-Saving's guarantee), among many
// connections that drop once: the shape of a scan or of a full table.
func TestTopTalkersKeepsHeavyHitters(t *testing.T) {
	tt := newTopTalkers(64)
	pkt := func(i int) *packet.Parsed {
		return &packet.Parsed{Proto: packet.ProtoTCP,
			Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), SrcPort: 40000,
			Dst: netip.MustParseAddr("192.0.2.1"), DstPort: 443}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	heavy := map[int]uint64{1: 5000, 2: 3000, 3: 2000}
	var stream []int
	for i, n := range heavy {
		for range n {
			stream = append(stream, i)
		}
	}
	for i := range 50000 {
		stream = append(stream, 100+i) // each drops once
	}
	rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	for _, i := range stream {
		tt.add(pkt(i), reason.HandshakeNotCompleted)
	}
	if len(tt.m) != 64 || len(tt.h) != 64 {
		t.Fatalf("%d tallies in the map, %d in the heap, want 64", len(tt.m), len(tt.h))
	}
	top := tt.top(3)
	for rank, want := range []int{1, 2, 3} {
		if top[rank].A != pairOf(pkt(want)).a.String() && top[rank].B != pairOf(pkt(want)).a.String() {
			t.Errorf("rank %d: %+v, want source %d", rank, top[rank], want)
		}
		if lo, hi := heavy[want], heavy[want]+top[rank].Error; top[rank].Drops < lo || top[rank].Drops > hi {
			t.Errorf("rank %d: %d drops (error %d), want %d", rank, top[rank].Drops, top[rank].Error, heavy[want])
		}
		if top[rank].Reasons["handshake_not_completed"] == 0 {
			t.Errorf("rank %d: reasons %v", rank, top[rank].Reasons)
		}
	}
	for i, e := range tt.h { // the heap is consistent
		if e.pos != i || tt.m[e.key] != e {
			t.Fatalf("heap entry %d out of place", i)
		}
		if i > 0 && tt.h[(i-1)/2].count > e.count {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}
