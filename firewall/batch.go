package firewall

import (
	"keepstate/conntrack"
	"keepstate/packet"
)

// BatchSize is the most packets a Batch holds.
const BatchSize = 32

// A batch's undecoded packets are a bit set in a uint64.
var _ [64 - BatchSize]struct{}

// Batches always prefetch, whatever the table's size. Prefetching only from 32 768
// connections was tried: bench engine's in-memory loop at 10 000 connections,
// where the table stays in the caches, gained a few ns a packet, but replaying a
// capture of 10 000 connections lost a quarter of its speed (3.1-4.2 M packets/s
// instead of 4.9-5.8 M), because a feeder streams packet data through the caches
// and even a small table misses them.

// slotAhead and warmAhead are how many packets ahead of the one being decided
// DecideBatch decodes a packet and requests its index slot, and requests its
// entry: far enough that a load from main memory (about 100 ns, more with a TLB
// miss) has arrived when it is needed.
const (
	slotAhead = 8
	warmAhead = 4
)

// Batch is a group of packets that DecideBatch decides together, and the decoded
// packets and decisions it leaves behind. A feeder keeps one per goroutine and
// reuses it; it holds about 15 KiB and allocates nothing once made.
//
// Deciding packets in batches gives the same decisions, in the same order, as
// deciding them one by one: the batch only works out every packet's place in the
// connection table first and asks the CPU to load those places, so that the cache
// misses of a large table are waited for once per batch rather than once per
// packet, and counts its packets once per batch.
type Batch struct {
	n      int
	frames [BatchSize][]byte
	wire   [BatchSize]int // each frame's length on the wire
	links  [BatchSize]packet.LinkType
	in     [BatchSize]int
	now    [BatchSize]int64
	probes [BatchSize]conntrack.Probe

	// Packets[i] is the i-th packet added, decoded by DecideBatch, and
	// Decisions[i] its decision.
	Packets   [BatchSize]packet.Parsed
	Decisions [BatchSize]Decision
}

// Add appends a frame captured on link, arrived on interface in (-1 when unknown)
// at now. The frame must stay unchanged until DecideBatch has returned. Add reports
// false, adding nothing, when the batch is full.
func (b *Batch) Add(frame []byte, link packet.LinkType, in int, now int64) bool {
	return b.AddCut(frame, 0, link, in, now)
}

// AddCut is Add for a frame whose length on the wire is known: one that may have
// been cut short (by a capture's snapshot length, or NFQUEUE's copy range), or a
// whole one (a length below len(frame) means whole; 0 means unknown, as for Add):
// see packet.Parsed.DecodeWire.
func (b *Batch) AddCut(frame []byte, wireLen int, link packet.LinkType, in int, now int64) bool {
	if b.n == BatchSize {
		return false
	}
	i := b.n
	b.frames[i], b.wire[i], b.links[i], b.in[i], b.now[i] = frame, wireLen, link, in, now
	b.n++
	return true
}

// Len is the number of packets added since the last Reset.
func (b *Batch) Len() int { return b.n }

// Full reports whether the batch holds BatchSize packets.
func (b *Batch) Full() bool { return b.n == BatchSize }

// Frame, Link and Time return what was added as the i-th packet.
func (b *Batch) Frame(i int) []byte         { return b.frames[i] }
func (b *Batch) Link(i int) packet.LinkType { return b.links[i] }
func (b *Batch) Time(i int) int64           { return b.now[i] }

// Reset empties the batch for reuse and lets go of the frames.
func (b *Batch) Reset() {
	clear(b.frames[:b.n])
	b.n = 0
}

// DecideBatch decides every packet in b, in the order they were added, exactly as
// DecideInto would one after another, and leaves the decoded packets and decisions
// in b.Packets and b.Decisions.
func (e *Engine) DecideBatch(b *Batch) {
	n := b.n
	var undecoded uint64 // bit i: packet i failed to decode and is decided already
	// prepare decodes and keys packet i and requests its index slot.
	prepare := func(i int) {
		p, d := &b.Packets[i], &b.Decisions[i]
		if !e.decode(b.frames[i], b.wire[i], b.links[i], b.in[i], p, d) {
			undecoded |= 1 << i
			b.probes[i] = conntrack.Probe{}
			return
		}
		e.table.Prepare(p, &b.probes[i])
	}
	// The steps run at fixed distances ahead of the packet being decided, rather
	// than each over the whole batch, so that only a few loads are in flight at a
	// time: a core tracks a limited number of misses, and prefetches beyond that
	// stall or are dropped.
	for i := range min(slotAhead, n) {
		prepare(i)
	}
	for i := range min(warmAhead, n) {
		e.table.Warm(&b.probes[i])
	}
	var accepted uint64
	for i := range n {
		if j := i + slotAhead; j < n {
			prepare(j)
		}
		if j := i + warmAhead; j < n {
			e.table.Warm(&b.probes[j])
		}
		if undecoded&(1<<i) != 0 {
			continue
		}
		d := &b.Decisions[i]
		e.process(&b.Packets[i], b.in[i], b.now[i], d, &b.probes[i])
		if d.Action == Accept {
			accepted++
		} else {
			e.countDrop(d)
		}
	}
	if accepted > 0 {
		e.accepted.Add(accepted)
	}
}
