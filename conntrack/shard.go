package conntrack

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"keepstate/internal/prefetch"
)

// tcpDir is the window-tracking state of one direction (the sender's view):
// end is the highest seq+len sent, maxend the highest ack+window the peer allowed,
// maxwin the largest (scaled) window the sender advertised. maxwin == 0 means the
// direction has not been initialised yet.
type tcpDir struct{ end, maxend, maxwin uint32 }

// entry is one connection. It is pointer free and exactly 112 bytes (checked by a
// test): see doc.go for how the fields were squeezed.
type entry struct {
	lastSeen   int64     // Unix ns of the last packet that refreshed the timer
	bytesLo    [2]uint32 // IP bytes per direction, low 32 of 48 bits
	pktsLo     [2]uint32 // packets per direction, low 32 of 39 bits
	tcp        [2]tcpDir // indexed by Dir
	prev, next uint32    // class list links (next also links the free list)
	created    uint32    // Unix seconds
	idSeq      uint32    // per-shard sequence; id = idSeq<<8 | shard
	bytesHi    [2]uint16
	key        Key
	sf         uint8    // State in the low nibble, entry flags in the high nibble
	dflags     [2]uint8 // per-direction TCP flags: window scale in the low nibble
	meta       uint16   // interned Meta index (15 bits; read it with metaIndex) and the dirty mark (metaDirty)
	pktsHi     [2]uint8 // packets' high 7 bits; the top bits say which list holds an established entry (lOnUnacked, lOnRefiled)
}

// Entry flags, in the high nibble of entry.sf.
const (
	fSeenReply uint8 = 0x10 // a packet was seen in the reply direction
	fAssured   uint8 = 0x20 // handshake completed or reply seen: never evicted
	fLiberal   uint8 = 0x40 // window checks are not enforced: picked up mid-stream, or (with fAssured) relearning
	fCounted   uint8 = 0x80 // counted in the per-source limiter
)

// Per-direction TCP flags, in entry.dflags (the low nibble is the window scale).
const (
	dfWScale  uint8 = 0x10 // the direction's SYN carried a window scale option
	dfSACK    uint8 = 0x20 // the direction's SYN carried SACK-permitted
	dfDataAck uint8 = 0x40 // the direction has sent a packet with ACK set (diagnosis)
	dfUnacked uint8 = 0x80 // the direction sent data the other has not acknowledged yet
)

func (e *entry) state() State       { return State(e.sf & 0x0f) }
func (e *entry) setState(s State)   { e.sf = e.sf&0xf0 | uint8(s) }
func (e *entry) has(f uint8) bool   { return e.sf&f != 0 }
func (e *entry) set(f uint8)        { e.sf |= f }
func (e *entry) clear(f uint8)      { e.sf &^= f }
func (e *entry) scale(d Dir) uint32 { return uint32(e.dflags[d] & 0x0f) }

func (e *entry) packets(d Dir) uint64 {
	return uint64(e.pktsHi[d]&pktsHiMask)<<32 | uint64(e.pktsLo[d])
}
func (e *entry) bytes(d Dir) uint64 { return uint64(e.bytesHi[d])<<32 | uint64(e.bytesLo[d]) }

// account adds one packet of n bytes in direction d. Counters wrap at 2^39 packets
// and 2^48 bytes (256 TiB) per direction. The low words are added with a carry
// into the high ones rather than reassembled: this runs for every packet.
func (e *entry) account(d Dir, n int) {
	e.pktsLo[d]++
	if e.pktsLo[d] == 0 {
		e.pktsHi[d] = e.pktsHi[d]&^pktsHiMask | (e.pktsHi[d]+1)&pktsHiMask
	}
	lo := e.bytesLo[d]
	e.bytesLo[d] = lo + uint32(n) // a packet is far below 4 GiB
	if e.bytesLo[d] < lo {
		e.bytesHi[d]++
	}
}

func (e *entry) setCounters(d Dir, packets, bytes uint64) {
	e.pktsLo[d] = uint32(packets)
	e.pktsHi[d] = e.pktsHi[d]&^pktsHiMask | uint8(packets>>32)&pktsHiMask
	e.bytesLo[d], e.bytesHi[d] = uint32(bytes), uint16(bytes>>32)
}

// Where an established entry is listed, in the top bit of pktsHi[0] and [1]: see
// entry.list.
const (
	pktsHiMask uint8 = 0x7f
	lFlag      uint8 = 0x80
	lOnUnacked       = 0 // index into pktsHi
	lOnRefiled       = 1
)

// list is the class list entry e is on. It is its class, except for an
// established connection, which may also be on the unacknowledged-data list or on
// the refiled list (clsRefiled):
//
// Data not yet acknowledged gives a connection the shorter unacknowledged-data
// timeout, so it must then be on that class's list, or expiry would not find it in
// time. Its acknowledgement gives the established timeout back, but moving the
// entry back at once would move it twice per exchange of data, and a move writes
// both list neighbours: two cache misses in a large table, on most packets of a
// busy connection. So an established entry stays where it is (lazily) on the
// unacknowledged-data list, and is filed there from the start, when its handshake
// completes (see touchLocked). When expiry reaches it there, one unacknowledged-data
// timeout after it was last seen, it is handed over to the refiled list, which
// holds such entries in the order expiry reached them and so also in last-seen
// order: from then on it expires on time under the established timeout. A packet
// that moves it to a new time slice takes it from the refiled list to the
// established list; one on the unacknowledged-data list moves to that list's tail.
func (e *entry) list() class {
	c := e.class()
	if c == clsEstablished {
		switch {
		case e.pktsHi[lOnUnacked]&lFlag != 0:
			return clsUnacked
		case e.pktsHi[lOnRefiled]&lFlag != 0:
			return clsRefiled
		}
	}
	return c
}

// setList records that entry e is on list c.
func (e *entry) setList(c class) {
	e.pktsHi[lOnUnacked] &^= lFlag
	e.pktsHi[lOnRefiled] &^= lFlag
	switch c {
	case clsUnacked:
		e.pktsHi[lOnUnacked] |= lFlag
	case clsRefiled:
		e.pktsHi[lOnRefiled] |= lFlag
	}
}

// stateClass maps a state to its timeout class (ESTABLISHED may be clsPickup).
var stateClass = [numStates]class{
	StateNone:           clsClose,
	StateSynSent:        clsSynSent,
	StateSynRecv:        clsSynRecv,
	StateEstablished:    clsEstablished,
	StateFinWait:        clsFinWait,
	StateCloseWait:      clsCloseWait,
	StateLastAck:        clsLastAck,
	StateTimeWait:       clsTimeWait,
	StateClose:          clsClose,
	StateSynSent2:       clsSynSent,
	StateUDPUnreplied:   clsUDPUnreplied,
	StateUDPReplied:     clsUDPReplied,
	StateICMPUnreplied:  clsICMPUnreplied,
	StateICMPReplied:    clsICMPReplied,
	StateOtherUnreplied: clsOtherUnreplied,
	StateOtherReplied:   clsOtherReplied,
}

func (e *entry) class() class {
	st := e.state()
	if st == StateEstablished {
		switch {
		case e.sf&(fLiberal|fAssured) == fLiberal:
			return clsPickup // until both directions have been seen (a relearning connection keeps its timeout)
		case (e.dflags[0]|e.dflags[1])&dfUnacked != 0:
			return clsUnacked
		}
	}
	return stateClass[st]
}

const (
	nilIdx    = ^uint32(0)
	chunkBits = 7
	chunkLen  = 1 << chunkBits // entries per slab chunk: 14 KiB, one of the Go allocator's size classes
	// blockLen entries are what a shard takes from the table's slab at a time:
	// few, so that a shard's partly used block wastes little (taking a 128-entry
	// chunk per shard, half empty on average, would cost 11 bytes per connection
	// at 10 000 connections over 16 shards).
	blockLen = 16
	// The index stores entry index+1 in its low idxBits bits and a hash tag in the
	// rest: the slab addresses maxEntries entries, table-wide.
	idxBits    = 26
	idxMask    = 1<<idxBits - 1
	tagMask    = ^uint32(idxMask)
	maxEntries = idxMask
	minIndex   = 64
)

type list struct{ head, tail uint32 }

// shard is one lock's worth of the table. Everything in it is guarded by mu except
// what is said otherwise (seed, slab, and the atomics that lock-free readers use).
// A function or method whose name ends in Locked must be called with mu held, as
// in package daemon; the others take it themselves or touch nothing guarded.
type shard struct {
	mu   sync.Mutex
	num  uint8     // this shard's number, the low byte of its ids
	seed *hashSeed // the table's

	index []uint32 // 0 empty, else tagOf(hash) | (entry index+1): tag in the top 32-idxBits bits
	mask  uint32   // len(index)-1
	used  int      // live entries

	slab       *slab  // the table's: entries live there
	next, last uint32 // the shard's current block of never-used entries: [next, last)
	handed     uint32 // entries taken from the slab: used + on the free list
	// blocks holds the first entry of every block the shard took from the
	// slab, in order. Entries never move, so WriteSnapshot can walk them a
	// few blocks per hold of the lock and still see every connection that
	// lives through the walk once.
	blocks []uint32
	free   uint32 // free list head, linked through entry.next

	// What Warm reads without the lock to prefetch a packet's entry: the index,
	// whose slots are therefore written atomically.
	pubIndex atomic.Pointer[[]uint32]

	lists [numClasses]list
	// headSeen[c], for the classes of an eviction tier, is the lastSeen its list's
	// head had when it was last put at the head (noHead if the list is empty). A head refreshed within its
	// slice keeps its older value, which makes the shard look at most one slice
	// older than it is. tierSeen[t] is the least headSeen of tier t's
	// classes, published for evictOne, which reads it without the lock to choose a
	// shard. Both are kept by pushBackLocked and unlinkLocked.
	headSeen [numClasses]int64
	tierSeen [len(evictionTiers)]atomic.Int64

	seq    uint32 // last id sequence handed out
	clock  int64  // latest now seen by Track or Create, for calls that take no now
	tick   uint32 // calls since the last amortised reap
	cursor uint16 // next list the amortised reap looks at

	metas    []Meta // interned Meta values; metas[0] is Meta{}
	metaIx   map[Meta]uint16
	lastMeta uint16 // index of the Meta interned last: rules repeat
	// metaProf[j] is the timeout profile of the connections whose Meta is
	// metas[j], profs their lists (see profile.go).
	metaProf []uint8
	profs    []tprofile

	tombs  tombstones
	resync resyncHints8 // SYNs that connections ignored: see resync.go
	st     shardStats

	// dirty lists the entries whose dirty mark was set since the last
	// SweepUpdates (Config.TrackUpdates): see markDirtyLocked.
	dirty []uint32
}

// shardStats are event counters kept under the shard lock; Table.Stats sums them.
type shardStats struct {
	created, expired, closed, evicted, flushed, reopened, tombHits, metaOverflow, rstInexact, profileOverflow uint64
}

// maxPresizedIndex bounds the index slots allocated up front per shard (1 MiB): a
// huge configured limit must not cost its memory before connections exist.
const maxPresizedIndex = 1 << 18

// indexSlotsFor is the index size per shard that holds a full table of maxConns
// under the 3/4 load limit, so that a table filling up to its limit never stops to
// rehash on the packet path. 4 bytes per slot: about 5 bytes per connection at the
// limit, counted in the table's memory from the start.
func indexSlotsFor(maxConns, shards int) int {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	need := (maxConns/shards + 1) * 4 / 3
	n := minIndex
	for n < need && n < maxPresizedIndex {
		n <<= 1
	}
	return n
}

// slab holds the entries of every shard of a table, in chunks addressed by a
// table-wide entry index. Shards take blocks of blockLen entries from it; an
// entry stays with the shard that took it, and freed entries go on the shard's
// free list.
type slab struct {
	mu     sync.Mutex
	chunks []*[chunkLen]entry // under mu
	top    uint32             // entries handed out in blocks, under mu

	// The chunk pointers up to their capacity, and how many there are, for
	// readers that hold no lock: chunk pointers below n are written before they
	// are published and never again.
	pub atomic.Pointer[[]*[chunkLen]entry]
	n   atomic.Uint32
}

// init makes room for the chunk pointers of entries entries.
func (s *slab) init(entries int) {
	s.chunks = make([]*[chunkLen]entry, 0, entries/chunkLen+1)
	full := s.chunks[:cap(s.chunks)]
	s.pub.Store(&full)
}

// take reserves a block of blockLen entries and returns the first, or false when
// the slab is full. A block never straddles two chunks.
func (s *slab) take() (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.top > maxEntries-blockLen {
		return 0, false
	}
	first := s.top
	if int(first>>chunkBits) == len(s.chunks) {
		had := cap(s.chunks)
		s.chunks = append(s.chunks, new([chunkLen]entry))
		if cap(s.chunks) != had { // moved: publish the new array
			full := s.chunks[:cap(s.chunks)]
			s.pub.Store(&full)
		}
		s.n.Store(uint32(len(s.chunks)))
	}
	s.top += blockLen
	return first, true
}

// at returns entry i, which the caller's shard took from the slab (so the
// chunk holding it was published before the shard's take returned).
func (s *slab) at(i uint32) *entry {
	return entryIn((*s.pub.Load())[i>>chunkBits], i)
}

// entryIn returns entry i of chunk c (which holds it): &c[i%chunkLen], without the
// nil check Go puts on indexing through a pointer. That check loads the chunk's
// first byte, which in a table of a million connections is a cache miss of its own
// on every packet, and one that Warm would wait for instead of prefetching past it.
func entryIn(c *[chunkLen]entry, i uint32) *entry {
	return (*entry)(unsafe.Add(unsafe.Pointer(c), uintptr(i&(chunkLen-1))*unsafe.Sizeof(entry{})))
}

// peek returns entry i's address for a prefetch, or nil when i is not (yet) in a
// published chunk. It takes no lock and reads nothing of the entry.
func (s *slab) peek(i uint32) *entry {
	c := i >> chunkBits
	if c >= s.n.Load() {
		return nil
	}
	chunks := *s.pub.Load()
	if int(c) >= len(chunks) {
		return nil
	}
	return entryIn(chunks[c], i)
}

func newShard(num int, seed *hashSeed, sl *slab, slots int) *shard {
	sh := &shard{num: uint8(num), seed: seed, slab: sl, free: nilIdx, metas: []Meta{{}}, metaProf: []uint8{0}}
	sh.index = make([]uint32, slots)
	sh.mask = uint32(slots - 1)
	sh.pubIndex.Store(&sh.index)
	for c := range sh.lists {
		sh.lists[c] = list{nilIdx, nilIdx}
		sh.headSeen[c] = noHead
	}
	for t := range sh.tierSeen {
		sh.tierSeen[t].Store(noHead)
	}
	return sh
}

func (sh *shard) at(i uint32) *entry { return sh.slab.at(i) }

func (sh *shard) id(e *entry) uint64 { return uint64(e.idSeq)<<8 | uint64(sh.num) }

func tagOf(h uint64) uint32 { return uint32(h>>32) & tagMask }

// lookupLocked finds the entry of k in either direction.
func (sh *shard) lookupLocked(k *Key, h uint64) (uint32, Dir, bool) {
	tag := tagOf(h)
	for pos := uint32(h) & sh.mask; ; pos = (pos + 1) & sh.mask {
		v := sh.index[pos]
		if v == 0 {
			return nilIdx, Original, false
		}
		if v&tagMask != tag {
			continue
		}
		i := v&idxMask - 1
		ek := &sh.at(i).key
		if ek.Src == k.Src && ek.Dst == k.Dst && ek.SrcPort == k.SrcPort && ek.DstPort == k.DstPort && ek.Proto == k.Proto {
			return i, Original, true
		}
		if ek.Src == k.Dst && ek.Dst == k.Src && ek.SrcPort == k.DstPort && ek.DstPort == k.SrcPort && ek.Proto == k.Proto {
			return i, Reply, true
		}
	}
}

// insertLocked allocates an entry for k (which must not be present), indexes it and
// returns its index, or nilIdx if the slab is full. The entry is zeroed except for
// its key and is on no list.
func (sh *shard) insertLocked(k *Key, h uint64) uint32 {
	i := sh.free
	if i != nilIdx {
		sh.free = sh.at(i).next
	} else {
		if sh.next == sh.last {
			first, ok := sh.slab.take()
			if !ok {
				return nilIdx
			}
			sh.next, sh.last = first, first+blockLen
			sh.blocks = append(sh.blocks, first)
		}
		i = sh.next
		sh.next++
		sh.handed++
	}
	e := sh.at(i)
	*e = entry{key: *k, prev: nilIdx, next: nilIdx}
	if (sh.used+1)*4 > len(sh.index)*3 {
		sh.growLocked()
	}
	sh.placeLocked(h, i)
	sh.used++
	return i
}

func (sh *shard) placeLocked(h uint64, i uint32) {
	pos := uint32(h) & sh.mask
	for sh.index[pos] != 0 {
		pos = (pos + 1) & sh.mask
	}
	atomic.StoreUint32(&sh.index[pos], tagOf(h)|(i+1))
}

// growLocked doubles the index and re-places every entry.
func (sh *shard) growLocked() {
	old := sh.index
	sh.index = make([]uint32, 2*len(old))
	sh.mask = uint32(len(sh.index) - 1)
	for _, v := range old {
		if v != 0 {
			i := v&idxMask - 1
			sh.placeLocked(sh.at(i).key.hash(sh.seed), i)
		}
	}
	sh.pubIndex.Store(&sh.index)
}

// warmSlot prefetches the index slot of hash h, so that a lookup of it a little later
// finds the slot in cache. It takes no lock.
func (sh *shard) warmSlot(h uint64) {
	ix := *sh.pubIndex.Load()
	prefetch.Line(unsafe.Pointer(&ix[uint32(h)&uint32(len(ix)-1)]))
}

// warmEntry prefetches the entry the index slot of h points to when its tag
// matches (the first such slot of the probe sequence, which is nearly always the
// one), without taking the lock: a slot that changes meanwhile only makes the
// hint useless, never wrong.
func (sh *shard) warmEntry(h uint64) {
	ix := *sh.pubIndex.Load()
	mask := uint32(len(ix) - 1)
	tag := tagOf(h)
	pos := uint32(h) & mask
	for range 4 {
		v := atomic.LoadUint32(&ix[pos])
		if v == 0 {
			return
		}
		if v&tagMask == tag {
			e := sh.slab.peek(v&idxMask - 1)
			if e == nil {
				return
			}
			// A 112-byte entry straddles two cache lines, or three when it
			// starts in the second half of one (half of them do): the lookup
			// reads its key (in the middle and at the end) and the update its
			// times and windows (at the start).
			prefetch.Line(unsafe.Pointer(e))
			prefetch.Line(unsafe.Add(unsafe.Pointer(e), 64))
			prefetch.Line(unsafe.Add(unsafe.Pointer(e), unsafe.Sizeof(*e)-1))
			return
		}
		pos = (pos + 1) & mask
	}
}

// unindexLocked removes entry i from the index with backward-shift deletion, which keeps
// every probe sequence unbroken without tombstone slots.
func (sh *shard) unindexLocked(i uint32, h uint64) {
	pos := uint32(h) & sh.mask
	for sh.index[pos]&idxMask != i+1 {
		pos = (pos + 1) & sh.mask
	}
	hole := pos
	for {
		pos = (pos + 1) & sh.mask
		v := sh.index[pos]
		if v == 0 {
			break
		}
		home := uint32(sh.at(v&idxMask-1).key.hash(sh.seed)) & sh.mask
		// Move v into the hole unless its home lies cyclically in (hole, pos].
		if (pos-home)&sh.mask >= (pos-hole)&sh.mask {
			atomic.StoreUint32(&sh.index[hole], v)
			hole = pos
		}
	}
	atomic.StoreUint32(&sh.index[hole], 0)
}

// releaseLocked unindexes entry i (already off its list; h is its key's hash) and puts it
// on the free list.
func (sh *shard) releaseLocked(i uint32, h uint64) {
	sh.unindexLocked(i, h)
	e := sh.at(i)
	*e = entry{prev: nilIdx, next: sh.free}
	sh.free = i
	sh.used--
}

// pushBackLocked files entry i at the tail of its profile's list of class c.
func (sh *shard) pushBackLocked(c class, i uint32) {
	e := sh.at(i)
	e.setList(c)
	p := sh.profileOf(e)
	l := sh.listOf(p, c)
	sh.pushBackOnLocked(l, i)
	if p == 0 && l.head == i {
		sh.setHeadSeenLocked(c, e.lastSeen)
	}
}

// pushBackOnLocked links entry i at the tail of l.
func (sh *shard) pushBackOnLocked(l *list, i uint32) {
	e := sh.at(i)
	e.prev, e.next = l.tail, nilIdx
	if l.tail != nilIdx {
		sh.at(l.tail).next = i
	} else {
		l.head = i
	}
	l.tail = i
}

// unlinkLocked takes entry i off its profile's list of class c.
func (sh *shard) unlinkLocked(c class, i uint32) {
	e := sh.at(i)
	p := sh.profileOf(e)
	l := sh.listOf(p, c)
	head := l.head == i
	sh.unlinkFromLocked(l, i)
	if p == 0 && head && evictTier[c] >= 0 {
		seen := noHead
		if l.head != nilIdx {
			seen = sh.at(l.head).lastSeen
		}
		sh.setHeadSeenLocked(c, seen)
	}
}

// unlinkFromLocked takes entry i off l.
func (sh *shard) unlinkFromLocked(l *list, i uint32) {
	e := sh.at(i)
	if e.prev != nilIdx {
		sh.at(e.prev).next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nilIdx {
		sh.at(e.next).prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nilIdx, nilIdx
}

// republishHeadsLocked publishes every evictable list's head again, after lists
// were relinked without pushBackLocked.
func (sh *shard) republishHeadsLocked() {
	for c := range sh.lists {
		seen := noHead
		if h := sh.lists[c].head; h != nilIdx {
			seen = sh.at(h).lastSeen
		}
		sh.setHeadSeenLocked(class(c), seen)
	}
}

// noHead is headSeen's value for an empty list: later than any time.
const noHead = int64(^uint64(0) >> 1)

// setHeadSeenLocked records that class c's list has a new head last seen at seen
// (noHead: the list is now empty) and republishes the tier's least.
func (sh *shard) setHeadSeenLocked(c class, seen int64) {
	t := evictTier[c]
	if t < 0 {
		return
	}
	sh.headSeen[c] = seen
	least := noHead
	for _, tc := range evictionTiers[t] {
		least = min(least, sh.headSeen[tc])
	}
	sh.tierSeen[t].Store(least)
}

// Time slices keep the class lists ordered cheaply. An entry is moved to its
// list's tail only when a packet brings it into a new slice (or a new class), not
// on every packet: moving costs three cache misses (its neighbours and the old
// tail), and a busy flow sends many packets per slice. Each list is therefore
// ordered by move time, and every entry's lastSeen lies in the slice of its last
// move. The head's slice start is a lower bound on the lastSeen of everything
// behind it, which is all expiry needs to stop early (see Table.Expire).
//
// A class's slices are 2^shift ns: about a 16th of its timeout, between
// minSliceShift (about 1.07 s) and maxSliceShift (about 17 s). Longer slices mean
// fewer moves: a connection with data outstanding (300 s) moves about every 17 s
// of activity instead of every second. What they cost is that Expire re-checks, on
// each call, the connections that went idle during the oldest slice still in play
// (they expire within that slice): the cap keeps that to 17 s worth of them, also
// for the 24 h established timeout.
const (
	minSliceShift    = 30
	maxSliceShift    = 34
	slicesPerTimeout = 16
)

// sliceShiftFor is the slice shift of a class whose timeout is timeout ns.
func sliceShiftFor(timeout int64) uint8 {
	return uint8(min(maxSliceShift, max(minSliceShift, bits.Len64(uint64(timeout/slicesPerTimeout))-1)))
}

func sliceStart(t int64, shift uint8) int64 { return t >> shift << shift }

// touchLocked re-files entry i (e), which was on list from and last seen at oldSeen,
// after its state and lastSeen were updated.
func (sh *shard) touchLocked(s *settings, from class, i uint32, e *entry, oldSeen int64) {
	to := e.class()
	switch {
	case to == clsEstablished && (from == clsUnacked || from == clsRefiled):
		to = from // stays where it is: see entry.list
	case to == clsEstablished && from != clsEstablished:
		// A connection that has just become established is filed on the
		// unacknowledged-data list, where it may stay (see entry.list): its
		// first data would otherwise move it there from the established list,
		// one move with two neighbour misses for every connection (a quarter of
		// the packets in bench engine's traffic, about four per connection).
		to = clsUnacked
	}
	p := sh.profileOf(e)
	if shift := sh.shiftOf(s, p, to); to == from && e.lastSeen>>shift == oldSeen>>shift {
		return // headSeen may lag by up to this slice: see shard.headSeen
	}
	if to == clsRefiled {
		// The refiled list only takes what expiry hands over, in last-seen order;
		// its tail may be followed by hand-overs last seen earlier, so staying
		// there as its tail with a new slice is not allowed either.
		to = clsEstablished
	}
	if l := sh.listOf(p, to); to == from && l.tail == i && l.head != i {
		// Already last: nothing behind it was last seen earlier. (Alone on its
		// list it is re-filed all the same, which costs no neighbour and
		// publishes its new slice as the head's: see shard.headSeen.)
		return
	}
	sh.unlinkLocked(from, i)
	sh.pushBackLocked(to, i)
}

// internLocked returns the index of m in the shard's Meta table, adding it if there is
// room. Engines have few distinct (rule, flags) pairs, so the table stays tiny; if
// 32767 are ever exceeded (the index has 15 bits: see metaDirty), ok is false and
// the entry stores Meta{}.
func (sh *shard) internLocked(s *settings, m Meta) (idx uint16, ok bool) {
	if m == sh.metas[sh.lastMeta] {
		return sh.lastMeta, true
	}
	if idx, found := sh.metaIx[m]; found {
		sh.lastMeta = idx
		return idx, true
	}
	if len(sh.metas) > int(metaIndexMask) {
		return 0, false
	}
	if sh.metaIx == nil {
		sh.metaIx = make(map[Meta]uint16)
	}
	idx = uint16(len(sh.metas))
	sh.metas = append(sh.metas, m)
	sh.metaProf = append(sh.metaProf, sh.profileForLocked(s, int64(m.IdleTimeout)))
	sh.metaIx[m] = idx
	sh.lastMeta = idx
	return idx, true
}
