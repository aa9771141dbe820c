package conntrack

import (
	"keepstate/packet"
)

// A fast path (package dataplane/ebpf) may hold established connections for a
// while: it accepts their ordinary packets in the kernel and keeps their windows,
// last-seen time and counters meanwhile. The table stays the one authority. The
// protocol, which every method here keeps:
//
//   - Offload hands a connection over, under its shard lock, with the entry's
//     state at that moment; only an established TCP connection whose windows are
//     both tracked (not a mid-stream pickup) or a UDP flow that has had a reply.
//   - While it is held, the fast path's copy is the current one. The table's
//     windows, last-seen time and counters are frozen at the hand-over, and every
//     reader that needs them current folds the fast path's copy in first, under the
//     shard lock: expiry before it declares such a connection expired (so a busy
//     offloaded connection never times out, and an idle one times out exactly),
//     Range (conntrack list, the connection log), WriteSnapshot, the ICMP-error
//     check, and Reclaim.
//   - The fast path gives up any packet it is unsure of (flags, window, idle time,
//     interface) to the engine. Track takes the connection back, with its latest
//     state, before it decides any packet of a held connection (one the fast
//     path gave up, or one queued before the hand-over): the engine never decides
//     against the frozen copy. The feeder hands the connection over again later.
//   - Reconfigure takes every connection back: the fast path was told the old
//     timeouts, and the rules' options (logging every packet) may have changed. Every connection that ends (any cause: FIN/RST through Reclaim
//     first, expiry, flush, rule change, eviction) is taken out of the fast path
//     by endLocked, so nothing the table has forgotten is still accepted.

// OffloadState is what a fast path holds of a connection.
type OffloadState struct {
	Key      Key   // in the original direction
	LastSeen int64 // Unix ns
	// Timeout is the connection's idle timeout now; UnackedTimeout the one that
	// applies to a TCP connection while either side has data unacknowledged.
	Timeout, UnackedTimeout int64
	Dirs                    [2]OffloadDir // indexed by Dir
}

// OffloadDir is one direction's part of an OffloadState: the sender's window
// state (conntrack's four bounds), its packet and byte totals.
type OffloadDir struct {
	End, MaxEnd, MaxWin uint32
	Scale               uint8 // window scale of the sender's windows
	SACK                bool  // the sender's SYN offered SACK
	Unacked             bool  // it sent data the other side has not acknowledged
	Packets, Bytes      uint64
}

// Offloader is the fast path as the table sees it. Its methods are called with a
// shard lock held: they must not call the Table, and should be quick.
type Offloader interface {
	// Put takes connection st.Key over; false if it cannot (then nothing changed).
	Put(st *OffloadState) bool
	// Peek fills st with the current state of connection k if it is held.
	Peek(k *Key, st *OffloadState) bool
	// Take gives connection k back: it fills st with its last state and takes
	// it out of the fast path. False if k was not held. ended says the
	// connection has left the table: the fast path forgets all it learnt of it.
	Take(k *Key, st *OffloadState, ended bool) bool
}

type offloaderBox struct{ o Offloader }

// SetOffloader installs the fast path (nil removes it). Connections it holds
// should have been taken back before it is removed.
func (t *Table) SetOffloader(o Offloader) {
	if o == nil {
		t.off.Store(nil)
		return
	}
	t.off.Store(&offloaderBox{o})
}

func (t *Table) offloader() Offloader {
	if b := t.off.Load(); b != nil {
		return b.o
	}
	return nil
}

// offloadable reports whether e is of a kind a fast path may hold.
func offloadable(e *entry) bool {
	switch e.state() {
	case StateEstablished:
		// Not a pickup or a relearning connection: the engine does not enforce
		// their windows, which the kernel would.
		return !e.has(fLiberal) && !e.windowsGuessed() && e.has(fAssured) && e.tcp[Original].maxwin != 0 && e.tcp[Reply].maxwin != 0
	case StateUDPReplied:
		return true
	}
	return false
}

// Offload hands p's connection over to the offloader when it may hold it (see
// offloadable) and has not expired at now. It reports whether it did.
func (t *Table) Offload(p *packet.Parsed, now int64) bool {
	o := t.offloader()
	if o == nil || !fastPathable(p) || (p.Proto != packet.ProtoTCP && p.Proto != packet.ProtoUDP) {
		return false
	}
	s := t.cfg.Load()
	k := keyOf(p)
	h := k.hash(&t.seed)
	sh := t.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, _, ok := sh.lookupLocked(&k, h)
	if !ok {
		return false
	}
	e := sh.at(i)
	if !offloadable(e) || t.expiredAt(s, sh, e, now) {
		return false
	}
	var st OffloadState
	st.Key = e.key
	st.LastSeen = e.lastSeen
	prof := sh.profileOf(e) // the rule's own timeouts, if it has any
	st.Timeout = t.timeoutFor(s, sh, prof, stateClass[e.state()])
	st.UnackedTimeout = st.Timeout
	if e.state() == StateEstablished {
		st.UnackedTimeout = min(st.Timeout, t.timeoutFor(s, sh, prof, clsUnacked))
	}
	for d := Original; d <= Reply; d++ {
		st.Dirs[d] = OffloadDir{
			End: e.tcp[d].end, MaxEnd: e.tcp[d].maxend, MaxWin: e.tcp[d].maxwin,
			Scale: uint8(e.scale(d)), SACK: e.dflags[d]&dfSACK != 0, Unacked: e.dflags[d]&dfUnacked != 0,
			Packets: e.packets(d), Bytes: e.bytes(d),
		}
	}
	return o.Put(&st)
}

// KeyOf is the key of packet p as sent (p's source is the key's source).
func KeyOf(p *packet.Parsed) Key { return keyOf(p) }

// Reclaim takes connection k (either direction) back from the offloader, if it
// holds it, folding in its latest state.
func (t *Table) Reclaim(k Key) bool {
	o := t.offloader()
	if o == nil {
		return false
	}
	s := t.cfg.Load()
	h := k.hash(&t.seed)
	sh := t.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, _, ok := sh.lookupLocked(&k, h)
	if !ok {
		// Not in the table (any more): make sure the fast path forgets it too.
		var st OffloadState
		o.Take(&k, &st, true)
		return false
	}
	var st OffloadState
	if !o.Take(&sh.at(i).key, &st, false) {
		return false
	}
	t.applyOffloadLocked(sh, i, s, &st)
	return true
}

// reclaimLocked takes entry i back from the fast path, if it holds it, before
// the engine decides a packet of it: a packet that reached the engine without
// the fast path's mark (queued before the hand-over, or from an interface the
// program is not attached to) must be decided against the current state, and
// what it changes must not be overwritten by the fast path's copy later.
func (t *Table) reclaimLocked(sh *shard, i uint32, s *settings) {
	o := t.offloader()
	if o == nil || !offloadable(sh.at(i)) {
		return
	}
	var st OffloadState
	if o.Take(&sh.at(i).key, &st, false) {
		t.applyOffloadLocked(sh, i, s, &st)
	}
}

// refreshLocked folds the fast path's current state of entry i into it, if the
// fast path holds it. It reports whether anything was folded in.
func (t *Table) refreshLocked(sh *shard, i uint32, s *settings) bool {
	o := t.offloader()
	if o == nil || !offloadable(sh.at(i)) {
		return false
	}
	var st OffloadState
	if !o.Peek(&sh.at(i).key, &st) {
		return false
	}
	t.applyOffloadLocked(sh, i, s, &st)
	return true
}

// expiredNowLocked is expiredAt for an entry the fast path may hold: before it
// is found expired, the fast path's last-seen time is folded in.
func (t *Table) expiredNowLocked(sh *shard, i uint32, s *settings, now int64) bool {
	if !t.expiredAt(s, sh, sh.at(i), now) {
		return false
	}
	return !t.refreshLocked(sh, i, s) || t.expiredAt(s, sh, sh.at(i), now)
}

// refreshShardLocked folds the fast path's state into every entry of sh it holds,
// for readers that report entries (Range, WriteSnapshot).
func (t *Table) refreshShardLocked(sh *shard, s *settings) {
	if t.offloader() == nil {
		return
	}
	var held []uint32
	t.forEntriesLocked(sh, func(i uint32, e *entry) {
		if offloadable(e) {
			held = append(held, i)
		}
	})
	for _, i := range held {
		t.refreshLocked(sh, i, s)
	}
}

// applyOffloadLocked writes st into entry i and re-files it.
func (t *Table) applyOffloadLocked(sh *shard, i uint32, s *settings, st *OffloadState) {
	e := sh.at(i)
	from := e.list()
	old := e.lastSeen
	e.applyOffload(st)
	sh.touchLocked(s, from, i, e, old)
}

// applyOffload writes st into e without re-filing it.
func (e *entry) applyOffload(st *OffloadState) {
	e.lastSeen = max(e.lastSeen, st.LastSeen)
	tcp := e.state().IsTCP()
	for d := Original; d <= Reply; d++ {
		sd := &st.Dirs[d]
		if tcp {
			e.tcp[d] = tcpDir{end: sd.End, maxend: sd.MaxEnd, maxwin: sd.MaxWin}
			e.dflags[d] &^= dfUnacked
			if sd.Unacked {
				e.dflags[d] |= dfUnacked
			}
			if sd.Packets > e.packets(d) {
				e.dflags[d] |= dfDataAck // the fast path accepts only segments with ACK
			}
		}
		if sd.Packets >= e.packets(d) {
			e.setCounters(d, sd.Packets, sd.Bytes)
		}
	}
}

// takeBackLocked gives entry e, which is ending, its last state from the fast
// path and makes the fast path forget it. It does not re-file e.
func (t *Table) takeBackLocked(e *entry) {
	o := t.offloader()
	if o == nil {
		return
	}
	var st OffloadState
	if o.Take(&e.key, &st, true) {
		e.applyOffload(&st)
	}
}

// reclaimAll takes every connection back from the offloader: a new
// configuration may change what the fast path was told at hand-over (timeouts,
// rule options such as logging every packet, anti-spoofing), so connections are
// handed over again, under the new settings, as their next packets reach the
// engine.
func (t *Table) reclaimAll() {
	o := t.offloader()
	if o == nil {
		return
	}
	s := t.cfg.Load()
	var held []uint32
	for _, sh := range t.shards {
		held = held[:0]
		sh.mu.Lock()
		t.forEntriesLocked(sh, func(i uint32, e *entry) {
			if offloadable(e) {
				held = append(held, i)
			}
		})
		for _, i := range held {
			var st OffloadState
			if o.Take(&sh.at(i).key, &st, false) {
				t.applyOffloadLocked(sh, i, s, &st)
			}
		}
		sh.mu.Unlock()
	}
}
