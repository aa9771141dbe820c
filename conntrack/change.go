package conntrack

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"keepstate/packet"
)

// ChangeKind says what happened to a connection, for Config.OnChange and
// SweepUpdates.
type ChangeKind uint8

const (
	// ChangeCreated: the connection was created (its first packet was accepted).
	ChangeCreated ChangeKind = iota + 1
	// ChangeState: its state changed (every TCP transition, handshake steps
	// included, and the first reply of UDP, ICMP and other protocols). A TCP
	// connection has at most about seven in its life.
	ChangeState
	// ChangeEnded: it left the table; Change.Cause says why.
	ChangeEnded
	// ChangeUpdated: its last-seen time, windows or counters changed since the
	// previous SweepUpdates. Only SweepUpdates delivers these.
	ChangeUpdated
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeCreated:
		return "created"
	case ChangeState:
		return "state"
	case ChangeEnded:
		return "ended"
	case ChangeUpdated:
		return "updated"
	}
	return "unknown"
}

// RecordLen is the length of a Record: a snapshot entry record with its type byte.
const RecordLen = 1 + entryRecLen

// Record is one connection as a snapshot stores it (see WriteSnapshot's format):
// tuple, state and flags, windows, rule, counters, and its age and idle time
// relative to the Change's Now. Apply puts it into another table.
type Record [RecordLen]byte

// Change is one event of a connection's life.
type Change struct {
	Kind  ChangeKind
	Cause EndCause // for ChangeEnded
	// Remote is true for a change Apply made from a peer's record: a consumer
	// that publishes changes to peers must not send these back.
	Remote bool
	Now    int64 // the table time of the change; Record's ages are relative to it
	Info   ConnInfo
	Record Record
}

// noteLocked queues a change of entry e for OnChange.
func (t *Table) noteLocked(ended *endBuf, sh *shard, e *entry, s *settings, kind ChangeKind, cause EndCause, now int64) {
	bb := ended.batch()
	bb.changes = append(bb.changes, Change{})
	c := &bb.changes[len(bb.changes)-1]
	t.fillChangeLocked(c, sh, e, s, kind, cause, now)
	c.Remote = ended.remote
}

func (t *Table) fillChangeLocked(c *Change, sh *shard, e *entry, s *settings, kind ChangeKind, cause EndCause, now int64) {
	// A change may be noted with a now older than the entry's last packet
	// (another goroutine's clock): ages must not be negative.
	now = max(now, e.lastSeen)
	c.Kind, c.Cause, c.Now = kind, cause, now
	c.Info = t.infoLocked(sh, e, s)
	appendEntryLocked(c.Record[:0], sh, e, now)
}

// The dirty mark of TrackUpdates is the top bit of entry.meta (whose index
// therefore has 15 bits): the entry has no other bit to spare, and its size is
// fixed at 112 bytes.
const (
	metaDirty     uint16 = 1 << 15
	metaIndexMask        = metaDirty - 1
)

func (e *entry) metaIndex() uint16 { return e.meta & metaIndexMask }

// markDirtyLocked records that entry i's last-seen time, windows or counters
// changed, once until the next sweep: a bit and, the first time, an index on the
// shard's list. It is the whole per-packet cost of TrackUpdates.
func (sh *shard) markDirtyLocked(s *settings, i uint32, e *entry) {
	if !s.trackUpdates || e.meta&metaDirty != 0 {
		return
	}
	e.meta |= metaDirty
	if len(sh.dirty) >= 2*sh.used+1024 {
		sh.compactDirtyLocked()
	}
	sh.dirty = append(sh.dirty, i)
}

// compactDirtyLocked drops from the dirty list the entries that ended (their mark
// went with them) and the duplicates left by entries that ended and were reused,
// so that a table nobody sweeps keeps a list no longer than its live entries.
func (sh *shard) compactDirtyLocked() {
	keep := sh.dirty[:0]
	for _, i := range sh.dirty {
		if e := sh.at(i); e.meta&metaDirty != 0 {
			e.meta &^= metaDirty // a second copy of i is then dropped
			keep = append(keep, i)
		}
	}
	for _, i := range keep {
		sh.at(i).meta |= metaDirty
	}
	sh.dirty = keep
}

// sweepBatch bounds the changes built under one hold of a shard lock.
const sweepBatch = 512

// SweepUpdates delivers to fn a ChangeUpdated for every connection whose last-seen
// time, windows or counters changed since the previous sweep (Config.TrackUpdates
// marks them), and clears the marks. fn gets at most a few hundred changes of one
// shard at a time and runs without a lock held; the slice is reused after it
// returns. One consumer should sweep (the marks are the table's): the daemon runs
// the sweep and hands the batches to whoever wants them. It returns how many
// changes it delivered.
func (t *Table) SweepUpdates(now int64, fn func([]Change)) int {
	s := t.cfg.Load()
	var batch []Change
	total := 0
	for _, sh := range t.shards {
		for more := true; more; {
			batch = batch[:0]
			sh.mu.Lock()
			n := 0
			for n < len(sh.dirty) && len(batch) < sweepBatch {
				e := sh.at(sh.dirty[n])
				n++
				if e.meta&metaDirty == 0 {
					continue // ended, or already swept through an earlier copy
				}
				e.meta &^= metaDirty
				batch = append(batch, Change{})
				t.fillChangeLocked(&batch[len(batch)-1], sh, e, s, ChangeUpdated, 0, now)
			}
			rest := copy(sh.dirty, sh.dirty[n:])
			sh.dirty = sh.dirty[:rest]
			more = rest > 0
			sh.mu.Unlock()
			if len(batch) > 0 {
				fn(batch)
				total += len(batch)
			}
		}
	}
	return total
}

// relearn makes a TCP connection whose windows this table did not see for itself
// (a peer's record, or a snapshot of an earlier run) accept its traffic the way a
// connection picked up mid-stream does: the windows are learnt again from the
// packets, liberally until both directions have been seen, and then enforced. Its
// state, rule, counters, assured flag and the handshake's window scale and SACK
// options are kept, so unlike a picked-up connection it keeps its state's
// timeout. This is the one mechanism for every connection the table takes over
// (restored or failed over): see "Taking connections over" in doc.go.
func (e *entry) relearn() {
	if e.key.Proto != uint8(packet.ProtoTCP) {
		return
	}
	e.tcp = [2]tcpDir{} // maxwin 0: "this direction not seen yet"
	e.dflags[Original] &^= dfUnacked
	e.dflags[Reply] &^= dfUnacked
	e.set(fLiberal)
}

// stateRank orders a protocol's states by how far a connection has got: merging
// a peer's record never takes a connection back.
var stateRank = [numStates]uint8{
	StateSynSent: 1, StateSynSent2: 2, StateSynRecv: 3, StateEstablished: 4,
	StateFinWait: 5, StateCloseWait: 6, StateLastAck: 7, StateTimeWait: 8, StateClose: 9,
	StateUDPUnreplied: 1, StateUDPReplied: 2,
	StateICMPUnreplied: 1, StateICMPReplied: 2,
	StateOtherUnreplied: 1, StateOtherReplied: 2,
}

// ErrRecord reports a record Apply cannot use.
var ErrRecord = errors.New("conntrack: bad connection record")

func decodeRecord(rec []byte) (snapEntry, error) {
	if len(rec) != RecordLen || rec[0] != recEntry {
		return snapEntry{}, fmt.Errorf("%w: %d bytes of type %d, want %d of type %d", ErrRecord, len(rec), first(rec), RecordLen, recEntry)
	}
	se, err := decodeEntry(rec[1:])
	if err != nil {
		return se, fmt.Errorf("%w: %v", ErrRecord, err)
	}
	return se, nil
}

func first(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// Apply puts into the table what a peer's change says about one of its
// connections: kind and cause are the change's, rec its Record, with its times
// rebased onto now as a snapshot's are. It is what keeps a backup's table in step,
// and the rules make applying the same or an older record again harmless:
//
//   - A connection not in the table is added, taken over (see relearn): it
//     passes the counters' limits as a restored one does, not MaxConns. A record
//     older than a tombstone of its tuple (it ended here since) is ignored.
//   - A connection in the table keeps what this table saw for itself: its state
//     only moves forward (a peer's SYN_RECV does not undo ESTABLISHED), its
//     last-seen time and counters take the later and larger values, and its
//     windows stay; if a direction was never seen here it relearns, since the
//     peer sees the traffic that this table cannot check.
//   - ChangeEnded removes the connection, with a tombstone, unless it was seen
//     here after the peer's record; a ChangeCreated for a tuple that is closed
//     here replaces it, as a reopening SYN does.
//
// The changes Apply makes are delivered to OnChange with Remote set. Apply never
// takes a lock other than the connection's shard's.
func (t *Table) Apply(kind ChangeKind, cause EndCause, rec []byte, now int64) error {
	se, err := decodeRecord(rec)
	if err != nil {
		return err
	}
	if kind < ChangeCreated || kind > ChangeUpdated {
		return fmt.Errorf("%w: change kind %d", ErrRecord, kind)
	}
	if kind == ChangeEnded && (cause < EndExpired || cause > EndReopened) {
		return fmt.Errorf("%w: end cause %d", ErrRecord, cause)
	}
	s := t.cfg.Load()
	h := se.e.key.hash(&t.seed)
	sh := t.shardOf(h)
	ended := endBuf{remote: true}
	sh.mu.Lock()
	sh.clock = max(sh.clock, now)
	t.applyLocked(sh, s, h, kind, cause, &se, now, &ended, true)
	sh.mu.Unlock()
	ended.flush(s)
	return nil
}

// ApplySnapshot merges a snapshot written by WriteSnapshot, from a peer, into the
// table by Apply's rules: it is how a node that starts or rejoins catches up.
// Nothing is applied unless the whole snapshot is valid. Connections it adds are
// not announced to OnChange; ones it ends are, with Remote set. It returns the
// number of connection records it read.
func (t *Table) ApplySnapshot(r io.Reader, now int64) (int, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	entries, tombs, err := parseSnapshot(data)
	if err != nil {
		return 0, err
	}
	s := t.cfg.Load()
	merging := t.Len() > 0
	// Oldest first, so the lists stay in last-seen order (see sliceShiftFor).
	slices.SortStableFunc(entries, func(a, b snapEntry) int { return cmp.Compare(b.idle, a.idle) })
	for n := range entries {
		se := &entries[n]
		h := se.e.key.hash(&t.seed)
		sh := t.shardOf(h)
		ended := endBuf{remote: true}
		sh.mu.Lock()
		sh.clock = max(sh.clock, now)
		t.applyLocked(sh, s, h, ChangeUpdated, 0, se, now, &ended, false)
		sh.mu.Unlock()
		ended.flush(s)
	}
	if merging && len(entries) > 0 {
		for _, sh := range t.shards {
			sh.mu.Lock()
			sh.sortListsLocked()
			sh.mu.Unlock()
		}
	}
	for n := range tombs {
		tb := tombs[n]
		tb.lastSeen, tb.endedAt = now-tb.lastSeen, now-tb.endedAt // stored as ages
		h := tb.key.hash(&t.seed)
		sh := t.shardOf(h)
		ended := endBuf{remote: true}
		sh.mu.Lock()
		if i, _, ok := sh.lookupLocked(&tb.key, h); ok {
			if sh.at(i).lastSeen <= tb.lastSeen {
				t.endLocked(sh, i, s, now, tb.cause, &ended)
			}
		} else if s.tombCap > 0 {
			if _, _, found := sh.tombs.lookup(&tb.key, h, now, s.tombTTL); !found {
				sh.tombs.insert(s, len(t.shards), &tb.key, h, tb)
			}
		}
		sh.mu.Unlock()
		ended.flush(s)
	}
	return len(entries), nil
}

// applyLocked is Apply for a decoded record se of key hash h, with sh's lock held.
// announce says whether an added connection is announced.
func (t *Table) applyLocked(sh *shard, s *settings, h uint64, kind ChangeKind, cause EndCause, se *snapEntry, now int64, ended *endBuf, announce bool) {
	k := &se.e.key
	seen := now - se.idle
	i, dir, ok := sh.lookupLocked(k, h)
	if ok && t.expiredAt(s, sh, sh.at(i), now) {
		t.endLocked(sh, i, s, now, endCauseOf(sh.at(i)), ended)
		ok = false
	}
	if kind == ChangeEnded {
		switch {
		case ok && sh.at(i).lastSeen <= seen:
			// The tombstone keeps the peer's last-seen time, so that an
			// older record arriving after the end is recognised as such.
			sh.at(i).lastSeen = seen
			t.endLocked(sh, i, s, now, cause, ended)
		case !ok && s.tombCap > 0:
			if _, _, found := sh.tombs.lookup(k, h, now, s.tombTTL); !found {
				sh.tombs.insert(s, len(t.shards), k, h, tombstone{
					key: *k, state: se.e.state(), cause: cause, lastSeen: seen, endedAt: now,
				})
			}
		}
		return
	}
	if ok && kind == ChangeCreated && dir == Original && se.e.state() == StateSynSent {
		if old := sh.at(i).state(); old == StateTimeWait || old == StateClose {
			t.endLocked(sh, i, s, now, EndReopened, ended)
			ok = false
		}
	}
	if !ok {
		if tb, _, found := sh.tombs.lookup(k, h, now, s.tombTTL); found && tb.lastSeen >= seen {
			return // it ended here after what the record says
		}
		i, ok = t.insertRecordLocked(sh, s, h, se, now, true)
		if ok && announce && s.onChange != nil {
			t.noteLocked(ended, sh, sh.at(i), s, ChangeCreated, 0, now)
		}
		return
	}
	t.mergeLocked(sh, s, i, sh.at(i), dir, se, seen, now, ended)
}

// mergeLocked merges record se into live entry e (index i), whose direction the
// record's original direction is.
func (t *Table) mergeLocked(sh *shard, s *settings, i uint32, e *entry, dir Dir, se *snapEntry, seen, now int64, ended *endBuf) {
	from, oldSeen := e.list(), e.lastSeen
	old, rs := e.state(), se.e.state()
	if old.IsTCP() == rs.IsTCP() && stateRank[rs] > stateRank[old] {
		e.setState(rs)
	}
	e.set(se.e.sf & fAssured)
	if dir == Original {
		e.set(se.e.sf & fSeenReply)
	} else {
		e.set(fSeenReply) // the peer saw its original direction: this table's reply
	}
	if e.key.Proto == uint8(packet.ProtoTCP) && !e.has(fLiberal) && (e.tcp[Original].maxwin == 0 || e.tcp[Reply].maxwin == 0) {
		// A direction this table has not seen: the peer does, and this table
		// cannot check its packets' windows against numbers it does not have.
		e.set(fLiberal)
	}
	e.lastSeen = max(e.lastSeen, seen)
	for d := range Dir(2) {
		rd := d
		if dir == Reply {
			rd = 1 - d
		}
		e.setCounters(d, max(e.packets(d), se.counts[rd][0]), max(e.bytes(d), se.counts[rd][1]))
	}
	if e.metaIndex() == 0 && se.meta != (Meta{}) {
		if idx, _, ok := sh.internRecordLocked(s, se.meta); ok {
			e.meta = e.meta&metaDirty | idx
		}
	}
	sh.touchLocked(s, from, i, e, oldSeen)
	if e.state() != old && s.onChange != nil {
		t.noteLocked(ended, sh, e, s, ChangeState, 0, now)
	}
}

// internRecordLocked interns the Meta of a record: the record holds the rule, not
// its options, which come from the rule as the ruleset in force here defines it
// (Config.Resolve).
func (sh *shard) internRecordLocked(s *settings, m Meta) (uint16, Meta, bool) {
	if s.resolve != nil {
		m = s.resolve(m)
	}
	idx, ok := sh.internLocked(s, m)
	return idx, m, ok
}

// insertRecordLocked adds the connection of a decoded record, which must not be
// in the table, with its times rebased onto now; relearn says whether it is taken
// over (see relearn). It counts against the per-source limits, not MaxConns.
func (t *Table) insertRecordLocked(sh *shard, s *settings, h uint64, se *snapEntry, now int64, relearn bool) (uint32, bool) {
	k := se.e.key
	i := sh.insertLocked(&k, h)
	if i == nilIdx {
		return nilIdx, false
	}
	e := sh.at(i)
	prev, next := e.prev, e.next
	*e = se.e
	e.prev, e.next = prev, next
	e.sf &^= fCounted
	if s.perSrcConns > 0 || s.perSrcRate > 0 {
		t.src.count(&t.seed, srcKey{src: k.Src})
		e.set(fCounted)
	}
	e.lastSeen = now - se.idle
	e.created = uint32(max(now-se.age, 0) / 1e9)
	sh.seq++
	e.idSeq = sh.seq
	e.meta = 0
	if idx, m, ok := sh.internRecordLocked(s, se.meta); ok {
		e.meta = idx
		if m.MaxPerSource > 0 && m.Rule != 0 {
			t.src.count(&t.seed, srcKey{k.Src, m.Rule})
		}
	} else {
		sh.st.metaOverflow++
	}
	for d := range Dir(2) {
		e.setCounters(d, se.counts[d][0], se.counts[d][1])
	}
	if relearn {
		e.relearn()
	}
	sh.pushBackLocked(e.class(), i)
	t.count.Add(1)
	return i, true
}
