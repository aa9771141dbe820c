package conntrack

import (
	"keepstate/reason"
)

// tombstone remembers a connection that ended, so that a late packet for it can be
// told apart from one that never had a connection.
type tombstone struct {
	key      Key
	used     bool
	state    State    // state when it ended
	cause    EndCause // why it ended
	lastSeen int64    // Unix ns of its last packet
	endedAt  int64    // Unix ns: lastSeen+timeout for a timeout, else the removal time
	timeout  int64    // ns; the timeout that ended it, 0 if it did not time out
	id       uint64
}

// tombWays is the associativity: a tuple can only be in one set of tombWays slots, so
// a lookup costs at most tombWays comparisons and memory is a fixed array.
const tombWays = 4

// tombstones is one shard's share of the table's tombstone memory: a set-associative
// array allocated on first use, where a new tombstone replaces the same tuple's, a
// free or outlived slot, or else the set's oldest.
type tombstones struct {
	slots []tombstone
	sets  uint32
	n     int // slots in use (outlived ones included until reused)
}

func tombSet(h uint64, sets uint32) uint32 { return uint32(h>>8) % sets }

func (ts *tombstones) lookup(k *Key, h uint64, now, ttl int64) (*tombstone, Dir, bool) {
	if ts.sets == 0 {
		return nil, Original, false
	}
	base := tombSet(h, ts.sets) * tombWays
	for w := range uint32(tombWays) {
		tb := &ts.slots[base+w]
		if !tb.used || now-tb.endedAt >= ttl {
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

// insert stores tb for key k. The shard's share of the capacity is recomputed from
// the current settings; if it changed (Reconfigure), the old tombstones are dropped.
func (ts *tombstones) insert(s *settings, shards int, k *Key, h uint64, tb tombstone) {
	perShard := (s.tombCap + shards - 1) / shards
	sets := uint32((perShard + tombWays - 1) / tombWays)
	if sets != ts.sets {
		ts.slots = make([]tombstone, int(sets)*tombWays)
		ts.sets, ts.n = sets, 0
	}
	tb.key, tb.used = *k, true
	base := tombSet(h, sets) * tombWays
	victim := base
	for w := range uint32(tombWays) {
		c := &ts.slots[base+w]
		if c.used && c.key == *k {
			*c = tb
			return
		}
		v := &ts.slots[victim]
		switch {
		case !c.used:
			if v.used {
				victim = base + w
			}
		case v.used && (tb.endedAt-c.endedAt >= s.tombTTL || c.endedAt < v.endedAt):
			victim = base + w
		}
	}
	if !ts.slots[victim].used {
		ts.n++
	}
	ts.slots[victim] = tb
}

// result is the answer for a packet of the ended connection, travelling in dir.
func (tb *tombstone) result(dir Dir, now int64) Result {
	return Result{
		Verdict:    Drop,
		Reason:     reason.StateExpired,
		Dir:        dir,
		State:      StateNone,
		ID:         tb.id,
		Idle:       durationNS(now - tb.lastSeen),
		Timeout:    durationNS(tb.timeout),
		EndedState: tb.state,
		EndedAt:    tb.endedAt,
	}
}
