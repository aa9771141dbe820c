package conntrack

import (
	"sync"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

func durationNS(ns int64) time.Duration { return time.Duration(ns) }

type endEvent struct {
	info  ConnInfo
	cause EndCause
}

// endBuf collects what happens to connections while a shard lock is held (the
// connections that end, for OnEnd; the changes, for OnChange), so that the
// callbacks run after the lock is released. Its batch comes from a pool and only
// when there is something to deliver: the established path, which changes nothing
// that a callback hears of at once, never takes one, and in a steady state nothing
// allocates.
type endBuf struct {
	b *eventBatch
	// remote marks the changes noted as Remote: they were applied from a peer's
	// record (Table.Apply), not seen here.
	remote bool
}

type eventBatch struct {
	ends    []endEvent
	changes []Change
}

var eventBatches = sync.Pool{New: func() any { return new(eventBatch) }}

// maxPooledBatch bounds the batches that go back to the pool: a mass expiry's
// thousand changes need not stay in memory afterwards.
const maxPooledBatch = 4096

func (b *endBuf) batch() *eventBatch {
	if b.b == nil {
		b.b = eventBatches.Get().(*eventBatch)
	}
	return b.b
}

func (b *endBuf) add(ci ConnInfo, c EndCause) {
	bb := b.batch()
	bb.ends = append(bb.ends, endEvent{ci, c})
}

// flush delivers what was collected, in order, and returns the batch to the pool.
func (b *endBuf) flush(s *settings) {
	bb := b.b
	if bb == nil {
		return
	}
	b.b = nil
	for i := range bb.ends {
		s.onEnd(bb.ends[i].info, bb.ends[i].cause)
	}
	if len(bb.changes) > 0 {
		s.onChange(bb.changes)
	}
	if cap(bb.ends) > maxPooledBatch || cap(bb.changes) > maxPooledBatch {
		return
	}
	clear(bb.ends) // ConnInfo holds addresses, which may point to interned zones
	clear(bb.changes)
	bb.ends, bb.changes = bb.ends[:0], bb.changes[:0]
	eventBatches.Put(bb)
}

// reapSomeLocked is the expiry amortised into Track: every 16th call on a shard looks at
// the head of one class list, round robin, and removes up to two expired entries.
// Correctness does not depend on it (an expired entry is also ended when a packet
// finds it); it keeps memory from piling up between Expire calls.
func (t *Table) reapSomeLocked(sh *shard, s *settings, now int64, ended *endBuf) {
	sh.tick++
	if sh.tick&15 != 0 {
		return
	}
	// The cursor runs over the table's lists, then each profile's.
	n := uint16(numClasses) + uint16(len(sh.profs))*uint16(len(profiledClasses))
	c := sh.cursor % n
	sh.cursor = (c + 1) % n
	var l *list
	if c < uint16(numClasses) {
		l = &sh.lists[c]
	} else {
		c -= uint16(numClasses)
		l = &sh.profs[c/uint16(len(profiledClasses))].lists[c%uint16(len(profiledClasses))]
	}
	for range 2 {
		i := l.head
		if i == nilIdx || !t.expiredNowLocked(sh, i, s, now) {
			return
		}
		t.endLocked(sh, i, s, now, endCauseOf(sh.at(i)), ended)
	}
}

// Expire removes every connection that has timed out at now and returns how many.
//
// Its cost is O(expired + handed over + shards x classes), not a scan (an
// established connection idle for an unacknowledged-data timeout is handed once
// from that list to the refiled one: see entry.list): a class list is ordered by
// the time entries were last moved, and an entry's lastSeen lies in the time slice
// of its last move (see sliceShiftFor). Walking from the head, once an entry's slice
// starts less than one timeout before now, nothing behind it can have expired. Before
// that point every entry is checked exactly; the ones that are still alive there
// all expire within one slice, so they are few.
func (t *Table) Expire(now int64) int {
	s := t.cfg.Load()
	total := 0
	var ended endBuf
	for _, sh := range t.shards {
		for more := true; more; {
			// A mass expiry releases the lock every expireBatch entries so that
			// packets of this shard are not held up behind it.
			var n int
			sh.mu.Lock()
			n, more = t.expireShardLocked(sh, s, now, &ended, expireBatch)
			sh.mu.Unlock()
			ended.flush(s)
			total += n
		}
	}
	t.src.sweep(now)
	return total
}

const expireBatch = 1024

// expireShardLocked removes up to limit expired entries; more reports that it stopped
// at the limit.
func (t *Table) expireShardLocked(sh *shard, s *settings, now int64, ended *endBuf, limit int) (n int, more bool) {
	for p := range uint8(len(sh.profs) + 1) {
		for c := range class(numClasses) {
			if p > 0 && profSlot[c] < 0 {
				continue // the profile has no list of this class
			}
			if n, more = t.expireListLocked(sh, s, p, c, now, ended, n, limit); more {
				return n, true
			}
		}
	}
	return n, false
}

// expireListLocked is expireShardLocked for profile p's list of class c, having
// removed n entries so far.
func (t *Table) expireListLocked(sh *shard, s *settings, p uint8, c class, now int64, ended *endBuf, n, limit int) (int, bool) {
	l := sh.listOf(p, c)
	// The list's own timeout decides where to stop: the unacknowledged-data
	// list also holds established entries, whose timeout is longer.
	listTimeout := t.timeoutFor(s, sh, p, c)
	shift := sh.shiftOf(s, p, c)
	for i := l.head; i != nilIdx; {
		e := sh.at(i)
		if now-sliceStart(e.lastSeen, shift) < listTimeout {
			break
		}
		next := e.next
		expired := now-e.lastSeen >= t.timeoutOf(s, sh, e)
		if expired && t.refreshLocked(sh, i, s) {
			// Held by the fast path, whose last-seen time is now folded in
			// (and the entry re-filed behind the point this walk stops at,
			// unless it has really expired).
			if expired = t.expiredAt(s, sh, e, now); !expired {
				i = next
				continue
			}
		}
		switch {
		case expired:
			if n == limit {
				return n, true
			}
			t.endLocked(sh, i, s, now, endCauseOf(e), ended)
			n++
		case c == clsUnacked && e.class() == clsEstablished:
			// Its data was acknowledged since it was filed here: hand it
			// over to the refiled list (see entry.list).
			sh.unlinkLocked(clsUnacked, i)
			sh.pushBackLocked(clsRefiled, i)
		}
		i = next
	}
	return n, false
}

// reserve claims room for one new connection, expiring and then evicting when the
// table is full. Reserving before inserting keeps MaxConns exact under concurrency.
func (t *Table) reserve(s *settings, now int64) bool {
	if s.maxConns == 0 {
		t.count.Add(1)
		return true
	}
	for try := range 4 {
		if t.count.Add(1) <= s.maxConns {
			return true
		}
		t.count.Add(-1)
		if try == 0 && t.fullExpiries.due(now, fullExpireEvery) && t.Expire(now) > 0 {
			continue
		}
		if !t.evictOne(s, now) {
			return false
		}
	}
	return false
}

// fullExpireEvery is how much table time passes between the full expiry sweeps a
// full table makes before evicting. A sweep locks every shard; a flood of new
// connections against a full table would otherwise make one per packet, when one
// at a given time finds everything that is due by then.
const fullExpireEvery = int64(time.Millisecond)

// evictionTiers lists the classes whose entries may be evicted when the table is
// full, best victims first: connections already closed, then those that never
// completed a handshake or never got a reply. Assured connections are never evicted.
var evictionTiers = [...][]class{
	{clsClose, clsTimeWait},
	{clsSynSent, clsSynRecv, clsPickup, clsUDPUnreplied, clsICMPUnreplied, clsOtherUnreplied},
}

// evictTier[c] is the index in evictionTiers of class c's tier, or -1.
var evictTier = func() (t [numClasses]int8) {
	for c := range t {
		t[c] = -1
	}
	for i, tier := range evictionTiers {
		for _, c := range tier {
			t[c] = int8(i)
		}
	}
	return t
}()

// evictOne ends the least recently seen connection of the best tier that has one,
// to within one time slice of its list (a head refreshed within its slice keeps its
// published time: see shard.headSeen). It chooses the shard from the shards'
// published oldest heads (tierSeen) without locking any, then locks that one shard
// and ends the oldest head of the tier there. Locking every shard to compare their
// heads made each new connection a full table admits, and each it refuses, take
// every lock of the table: a flood of SYNs then contended with the established path
// on all of them. A table full of assured connections now refuses without taking a
// lock here (reserve still sweeps expiry over every shard, at most once a
// millisecond).
func (t *Table) evictOne(s *settings, now int64) bool {
	for tier, classes := range evictionTiers {
		best, bestSeen := -1, noHead
		for si, sh := range t.shards {
			if seen := sh.tierSeen[tier].Load(); seen < bestSeen {
				best, bestSeen = si, seen
			}
		}
		if best < 0 {
			continue
		}
		sh := t.shards[best]
		var ended endBuf
		sh.mu.Lock()
		victim, victimSeen := nilIdx, noHead
		for _, c := range classes {
			if i := sh.lists[c].head; i != nilIdx {
				if seen := sh.at(i).lastSeen; victim == nilIdx || seen < victimSeen {
					victim, victimSeen = i, seen
				}
			}
		}
		if victim != nilIdx {
			t.endLocked(sh, victim, s, now, EndEvicted, &ended)
		}
		sh.mu.Unlock()
		ended.flush(s)
		// Even if another goroutine took the victim first, room was probably made:
		// let reserve try again.
		return true
	}
	return false
}

// related answers an ICMP or ICMPv6 error: it passes if the packet it quotes belongs
// to a tracked connection, in whichever direction, and, for TCP, quotes a sequence
// number that connection could have sent (RFC 5927: otherwise a blind attacker
// could reset connections with forged errors). Errors never create connections and
// do not refresh timers.
func (t *Table) related(p *packet.Parsed, now int64) Result {
	if !p.Inner.Valid {
		return drop(reason.ICMPUnrelated)
	}
	s := t.cfg.Load()
	k := innerKeyOf(&p.Inner)
	h := k.hash(&t.seed)
	sh := t.shardOf(h)
	r := drop(reason.ICMPUnrelated)
	sh.mu.Lock()
	if i, dir, ok := sh.lookupLocked(&k, h); ok && !t.expiredNowLocked(sh, i, s, now) {
		t.refreshLocked(sh, i, s) // the quoted sequence number is checked against current windows
		if e := sh.at(i); p.Inner.Proto != packet.ProtoTCP || e.quotedSeqPlausible(dir, p.Inner.Seq) {
			// The error travels against the packet it quotes.
			r = Result{}
			sh.acceptLocked(e, 1-dir, &r)
		}
	}
	sh.mu.Unlock()
	return r
}

// Range calls fn for every connection until fn returns false. Each shard is copied
// under its lock and fn runs without it, so fn may call the Table; connections
// created or ended meanwhile may or may not be seen.
func (t *Table) Range(fn func(ConnInfo) bool) {
	s := t.cfg.Load()
	var buf []ConnInfo
	for _, sh := range t.shards {
		buf = buf[:0]
		sh.mu.Lock()
		t.refreshShardLocked(sh, s)
		t.forEntriesLocked(sh, func(_ uint32, e *entry) { buf = append(buf, t.infoLocked(sh, e, s)) })
		sh.mu.Unlock()
		for _, ci := range buf {
			if !fn(ci) {
				return
			}
		}
	}
}

// CloseIf ends every connection for which close returns true, with the given cause
// (EndFlushed for an operator flush, EndRuleChanged when a new ruleset no longer
// permits it; a later packet of a rule-changed connection is dropped with
// reason.RuleChanged). close runs without any lock held. It returns how many
// connections were ended.
func (t *Table) CloseIf(close func(*ConnInfo) bool, cause EndCause) int {
	s := t.cfg.Load()
	type victim struct{ i, seq uint32 }
	var infos []ConnInfo
	var idx []victim
	total := 0
	for _, sh := range t.shards {
		infos, idx = infos[:0], idx[:0]
		sh.mu.Lock()
		t.forEntriesLocked(sh, func(i uint32, e *entry) {
			infos = append(infos, t.infoLocked(sh, e, s))
			idx = append(idx, victim{i, e.idSeq})
		})
		sh.mu.Unlock()
		kill := idx[:0]
		for n := range infos {
			if close(&infos[n]) {
				kill = append(kill, idx[n])
			}
		}
		if len(kill) == 0 {
			continue
		}
		var ended endBuf
		sh.mu.Lock()
		for _, v := range kill {
			// The entry may have ended, or been reused by this shard (entries
			// never change shards), while close ran.
			if sh.at(v.i).idSeq == v.seq && v.seq != 0 {
				t.endLocked(sh, v.i, s, sh.clock, cause, &ended)
				total++
			}
		}
		sh.mu.Unlock()
		ended.flush(s)
	}
	return total
}

// KeepIf ends every connection for which keep returns false: CloseIf with the
// predicate inverted, for callers that think in terms of what a new ruleset keeps.
func (t *Table) KeepIf(keep func(*ConnInfo) bool, cause EndCause) int {
	return t.CloseIf(func(ci *ConnInfo) bool { return !keep(ci) }, cause)
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	st := Stats{
		Conns:      t.Len(),
		TableFull:  t.stats.tableFull.Load(),
		ConnLimit:  t.stats.connLimit.Load(),
		FragHits:   t.stats.fragHits.Load(),
		FragMisses: t.stats.fragMisses.Load(),
	}
	for _, sh := range t.shards {
		sh.mu.Lock()
		ss := sh.st
		st.Tombstones += sh.tombs.n
		sh.mu.Unlock()
		st.Created += ss.created
		st.Expired += ss.expired
		st.Closed += ss.closed
		st.Evicted += ss.evicted
		st.Flushed += ss.flushed
		st.Reopened += ss.reopened
		st.TombstoneHits += ss.tombHits
		st.RSTInexact += ss.rstInexact
		st.MetaOverflow += ss.metaOverflow
		st.ProfileOverflow += ss.profileOverflow
	}
	return st
}

// Lookup returns the live connection p belongs to and p's direction in it, changing
// nothing (no state change, no timer refresh): for diagnosis and "explain".
func (t *Table) Lookup(p *packet.Parsed, now int64) (ConnInfo, Dir, bool) {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return ConnInfo{}, Original, false
	}
	s := t.cfg.Load()
	k := keyOf(p)
	h := k.hash(&t.seed)
	sh := t.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, dir, ok := sh.lookupLocked(&k, h)
	if !ok || t.expiredNowLocked(sh, i, s, now) {
		return ConnInfo{}, Original, false
	}
	return t.infoLocked(sh, sh.at(i), s), dir, true
}
