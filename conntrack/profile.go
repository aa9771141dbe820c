package conntrack

import (
	"cmp"
	"slices"
)

// Per-rule options (pf's per-rule "keep state (...)"). The engine stores, in the
// Meta of each connection, the options of the rule that admitted it: its
// handshake mode, its own per-source limit and its established idle timeout.
//
// The class lists rely on every entry of one list having the same timeout (expiry
// stops at the first head that has not expired: see entry.list and Table.Expire).
// A rule's idle timeout therefore gets lists of its own: a timeout profile, one per
// distinct IdleTimeout value in a shard, holding the lists of the classes that
// timeout times (established, unacknowledged data, refiled). Every other class
// keeps the table's lists and timeouts. A shard's profile p (from 1) is
// profs[p-1]; profile 0 is the table's own. Which profile an entry is on is kept
// with its interned Meta (metaProf), so the 112-byte entry does not grow.

// Handshake is a connection's handshake mode, from the rule that admitted it.
type Handshake uint8

const (
	HandshakeInherit Handshake = iota // Config.Strict decides
	HandshakeStrict                   // the handshake must be seen and run in the right directions
	HandshakeLoose                    // picked up mid-stream; handshake-direction checks off
)

// maxProfiles bounds a shard's timeout profiles, the table's own included: a
// Meta with a further distinct IdleTimeout gets the table's timeout and is
// counted in Stats.ProfileOverflow. The engine allows 15 distinct values.
const maxProfiles = 16

// profiledClasses are the classes whose timeout a profile sets; profSlot maps a
// class to its index there, -1 for the others.
var profiledClasses = [...]class{clsEstablished, clsUnacked, clsRefiled}

var profSlot = func() (m [numClasses]int8) {
	for c := range m {
		m[c] = -1
	}
	for i, c := range profiledClasses {
		m[c] = int8(i)
	}
	return m
}()

// tprofile is one timeout profile of a shard.
type tprofile struct {
	established int64 // ns; 0 marks a free profile (its lists are empty)
	shift       [len(profiledClasses)]uint8
	lists       [len(profiledClasses)]list
}

// listOf returns profile p's list of class c (the table's own list when c is not
// a profiled class).
func (sh *shard) listOf(p uint8, c class) *list {
	if p == 0 || profSlot[c] < 0 {
		return &sh.lists[c]
	}
	return &sh.profs[p-1].lists[profSlot[c]]
}

// profileOf is the timeout profile entry e is on.
func (sh *shard) profileOf(e *entry) uint8 { return sh.metaProf[e.metaIndex()] }

// profileTimeout is the timeout of class c in profile p (before adaptive scaling).
func (sh *shard) profileTimeout(s *settings, p uint8, c class) int64 {
	if p == 0 || profSlot[c] < 0 {
		return s.timeout[c]
	}
	est := sh.profs[p-1].established
	if c == clsUnacked {
		return min(s.unacked, est)
	}
	return est
}

// shiftOf is the time-slice shift of profile p's list of class c.
func (sh *shard) shiftOf(s *settings, p uint8, c class) uint8 {
	if p == 0 || profSlot[c] < 0 {
		return s.shift[c]
	}
	return sh.profs[p-1].shift[profSlot[c]]
}

// profileForLocked returns the profile whose established timeout is est (ns),
// making one if there is room; 0 for the table's own (est 0) or when there is no
// room.
func (sh *shard) profileForLocked(s *settings, est int64) uint8 {
	if est <= 0 {
		return 0
	}
	free := -1
	for i := range sh.profs {
		switch {
		case sh.profs[i].established == est:
			return uint8(i + 1)
		case sh.profs[i].established == 0 && free < 0:
			free = i
		}
	}
	if free < 0 {
		if len(sh.profs) == maxProfiles-1 {
			sh.st.profileOverflow++
			return 0
		}
		sh.profs = append(sh.profs, tprofile{})
		free = len(sh.profs) - 1
	}
	pr := &sh.profs[free]
	*pr = tprofile{established: est}
	for j, c := range profiledClasses {
		pr.lists[j] = list{nilIdx, nilIdx}
		to := est
		if c == clsUnacked {
			to = min(s.unacked, est)
		}
		pr.shift[j] = sliceShiftFor(to)
	}
	return uint8(free + 1)
}

// forEachListLocked calls fn for every list of the shard: the table's own lists,
// then each profile's.
func (sh *shard) forEachListLocked(fn func(p uint8, c class, l *list)) {
	for c := range sh.lists {
		fn(0, class(c), &sh.lists[c])
	}
	for i := range sh.profs {
		for j, c := range profiledClasses {
			fn(uint8(i+1), c, &sh.profs[i].lists[j])
		}
	}
}

// remapLocked replaces every interned Meta m of the shard by f(m) (the rule
// options of a new configuration, or of the rule a restored connection names)
// and moves the connections whose timeout profile or per-rule count changes: into
// the profile of their new idle timeout, keeping last-seen order, and into or out
// of their rule's per-source count. Profiles left without connections are freed.
func (t *Table) remapLocked(sh *shard, s *settings, f func(Meta) Meta, now int64) {
	oldProf := slices.Clone(sh.metaProf)
	oldMetas := slices.Clone(sh.metas)
	moved := false
	for j := range sh.metas {
		m := f(sh.metas[j])
		if j == 0 || m == sh.metas[j] {
			continue
		}
		delete(sh.metaIx, sh.metas[j])
		sh.metas[j] = m
		if _, dup := sh.metaIx[m]; !dup {
			sh.metaIx[m] = uint16(j)
		}
		sh.metaProf[j] = sh.profileForLocked(s, int64(m.IdleTimeout))
		moved = moved || sh.metaProf[j] != oldProf[j] || (m.MaxPerSource > 0) != (oldMetas[j].MaxPerSource > 0) || m.Rule != oldMetas[j].Rule
	}
	sh.lastMeta = 0
	if !moved {
		return
	}
	// Every entry on a profiled class list may have to move: take them all off
	// (their lists under their old profiles), then file them again under the new,
	// in last-seen order, which is an order every list accepts (see sliceShiftFor).
	var idx []uint32
	for _, c := range profiledClasses {
		for p := range uint8(len(sh.profs) + 1) {
			l := sh.listOf(p, c)
			for i := l.head; i != nilIdx; i = sh.at(i).next {
				if e := sh.at(i); oldProf[e.metaIndex()] != sh.metaProf[e.metaIndex()] {
					idx = append(idx, i)
				}
			}
		}
	}
	for _, i := range idx {
		e := sh.at(i)
		sh.unlinkFromLocked(sh.listOf(oldProf[e.metaIndex()], e.list()), i)
	}
	slices.SortStableFunc(idx, func(a, b uint32) int { return cmp.Compare(sh.at(a).lastSeen, sh.at(b).lastSeen) })
	byList := map[*list][]uint32{}
	for _, i := range idx {
		e := sh.at(i)
		l := sh.listOf(sh.profileOf(e), e.list())
		byList[l] = append(byList[l], i)
	}
	for l, is := range byList {
		// Merge into what the list already holds, in last-seen order.
		var all []uint32
		for i := l.head; i != nilIdx; i = sh.at(i).next {
			all = append(all, i)
		}
		for _, i := range all {
			sh.unlinkFromLocked(l, i)
		}
		all = append(all, is...)
		slices.SortStableFunc(all, func(a, b uint32) int { return cmp.Compare(sh.at(a).lastSeen, sh.at(b).lastSeen) })
		for _, i := range all {
			sh.pushBackOnLocked(l, i)
		}
	}
	// Per-rule counts follow the new options.
	t.forEntriesLocked(sh, func(i uint32, e *entry) {
		old, cur := oldMetas[e.metaIndex()], sh.metas[e.metaIndex()]
		oldCounted, counted := old.MaxPerSource > 0 && old.Rule != 0, cur.MaxPerSource > 0 && cur.Rule != 0
		if oldCounted && (!counted || old.Rule != cur.Rule) {
			t.src.release(&t.seed, srcKey{e.key.Src, old.Rule}, now)
		}
		if counted && (!oldCounted || old.Rule != cur.Rule) {
			t.src.count(&t.seed, srcKey{e.key.Src, cur.Rule})
		}
	})
	// Free the profiles no Meta uses any more: their lists are empty now.
	used := make([]bool, len(sh.profs)+1)
	for _, p := range sh.metaProf {
		used[p] = true
	}
	for i := range sh.profs {
		if !used[i+1] {
			sh.profs[i].established = 0
		}
	}
}

// forEntriesLocked calls fn for every entry of the shard.
func (t *Table) forEntriesLocked(sh *shard, fn func(i uint32, e *entry)) {
	sh.forEachListLocked(func(_ uint8, _ class, l *list) {
		for i := l.head; i != nilIdx; {
			e := sh.at(i)
			next := e.next
			fn(i, e)
			i = next
		}
	})
}

// Remap replaces the Meta of every connection m by f(m) and moves each connection
// onto the timeout profile and per-rule count its new options ask for, keeping its
// last-seen time. The engine calls it after Reconfigure when a new ruleset changes
// the options of rules that have connections. f must be a pure function; it runs
// with shard locks held.
func (t *Table) Remap(f func(Meta) Meta) {
	s := t.cfg.Load()
	for _, sh := range t.shards {
		sh.mu.Lock()
		t.remapLocked(sh, s, f, sh.clock)
		sh.mu.Unlock()
	}
}
