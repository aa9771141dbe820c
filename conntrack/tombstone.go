package conntrack

import (
	"keepstate/reason"
)

// tombstone remembers a connection that ended, so that a late packet for it can be
// told apart from one that never had a connection. It is 64 bytes, one cache line.
type tombstone struct {
	key      Key
	state    State    // state when it ended
	cause    EndCause // why it ended; 0 marks a free slot
	lastSeen int64    // Unix ns of its last packet
	endedAt  int64    // Unix ns: lastSeen+timeout for a timeout, else the removal time
	// id is the connection's id in its low idBits; above them, its timeout class
	// plus one (0: not known, for a tombstone read from a snapshot) and the
	// index of its interned Meta in the shard (see tombID).
	id uint64
}

// Connection ids are idSeq<<8 | shard: 40 bits. A tombstone keeps the ended
// connection's class (which timeout ended it) and Meta (its rule) above them.
const (
	idBits   = 40
	idMask   = 1<<idBits - 1
	listBits = 8
)

func tombID(id uint64, l class, meta uint16) uint64 {
	return id&idMask | uint64(l+1)<<idBits | uint64(meta)<<(idBits+listBits)
}

func (tb *tombstone) connID() uint64 { return tb.id & idMask }

// ended returns the timeout class tb's connection ended in and whether it is
// known.
func (tb *tombstone) ended() (class, bool) {
	l := uint8(tb.id >> idBits)
	return class(l - 1), l != 0 && l <= uint8(numClasses)
}

func (tb *tombstone) metaIndex() uint16 { return uint16(tb.id >> (idBits + listBits)) }

// timeout is the timeout that ended the connection, 0 if it did not time out.
func (tb *tombstone) timeout() int64 {
	if tb.cause == EndExpired || tb.cause == EndClosed {
		return tb.endedAt - tb.lastSeen
	}
	return 0
}

// tombWays is the associativity: a tuple can only be in one set of tombWays slots, so
// a lookup costs at most tombWays comparisons and memory is a fixed array.
const tombWays = 4

// tombstones is one shard's share of the table's tombstone memory, allocated on
// first use: a set-associative array of slots, with a separate array of 16-bit hash
// tags per slot (0 = free) so that a lookup or insert reads one small tag line and
// then only the slot whose tag matches. Within a set, slots are replaced in FIFO
// order, which is oldest-first because connections end in time order.
type tombstones struct {
	slots []tombstone
	tags  []uint16 // per slot
	fifo  []uint8  // per set: next way to replace
	sets  uint32
	n     int // slots in use (outlived ones included until reused)
}

func tombSet(h uint64, sets uint32) uint32 { return uint32(h>>8) % sets }

// tombTag is a slot's 16-bit hash tag, never 0.
func tombTag(h uint64) uint16 { return uint16(h>>40) | 1 }

func (ts *tombstones) lookup(k *Key, h uint64, now, ttl int64) (*tombstone, Dir, bool) {
	if ts.sets == 0 {
		return nil, Original, false
	}
	base := tombSet(h, ts.sets) * tombWays
	tag := tombTag(h)
	for w := range uint32(tombWays) {
		if ts.tags[base+w] != tag {
			continue
		}
		tb := &ts.slots[base+w]
		if now-tb.endedAt >= ttl {
			continue
		}
		switch {
		case tb.key == *k:
			return tb, Original, true
		case tb.key == k.reverse():
			return tb, Reply, true
		}
	}
	return nil, Original, false
}

// insert stores tb for key k (hash h). The shard's share of the capacity is
// recomputed from the current settings; if it changed (Reconfigure), the old
// tombstones are dropped.
func (ts *tombstones) insert(s *settings, shards int, k *Key, h uint64, tb tombstone) {
	perShard := (s.tombCap + shards - 1) / shards
	sets := uint32((perShard + tombWays - 1) / tombWays)
	if sets != ts.sets {
		ts.slots = make([]tombstone, int(sets)*tombWays)
		ts.tags = make([]uint16, int(sets)*tombWays)
		ts.fifo = make([]uint8, sets)
		ts.sets, ts.n = sets, 0
	}
	tb.key = *k
	set := tombSet(h, sets)
	base := set * tombWays
	tag := tombTag(h)
	for w := range uint32(tombWays) {
		if ts.tags[base+w] == tag && ts.slots[base+w].key == *k {
			ts.slots[base+w] = tb // the same tuple ended again
			return
		}
	}
	victim := base + uint32(ts.fifo[set])
	ts.fifo[set] = (ts.fifo[set] + 1) % tombWays
	if ts.tags[victim] == 0 {
		ts.n++
	}
	ts.slots[victim] = tb
	ts.tags[victim] = tag
}

// result is the answer for a packet of the ended connection of shard sh,
// travelling in dir.
func (tb *tombstone) result(sh *shard, dir Dir, now int64) Result {
	r := Result{
		Verdict:    Drop,
		Reason:     reason.StateExpired,
		Dir:        dir,
		State:      StateNone,
		ID:         tb.connID(),
		Idle:       durationNS(now - tb.lastSeen),
		Timeout:    durationNS(tb.timeout()),
		EndedState: tb.state,
		EndedAt:    tb.endedAt,
	}
	if l, ok := tb.ended(); ok {
		r.endedClass = l
		if m := int(tb.metaIndex()); m < len(sh.metas) {
			r.Meta = sh.metas[m]
		}
	} else {
		r.endedClass = stateClass[tb.state]
	}
	return r
}
