package conntrack

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"

	"keepstate/packet"
	"keepstate/reason"
)

// Table is the connection table. All methods are safe for concurrent use.
type Table struct {
	seed      hashSeed
	shards    []*shard
	shardBits uint

	cfg   atomic.Pointer[settings]
	count atomic.Int64 // live entries plus in-flight Create reservations

	fullExpiries pacer // the sweeps a full table makes before evicting

	off   atomic.Pointer[offloaderBox] // the fast path, if any: see offload.go
	slab  slab                         // every shard's entries
	src   srcLimiter
	frags fragCache
	stats counters
}

// counters are the table-wide event counters of events that happen outside a shard
// lock; the rest are per shard (shardStats), plain integers under the shard's lock,
// so that a connection's life costs no contended atomic besides the table size.
type counters struct {
	tableFull, connLimit, fragHits, fragMisses atomic.Uint64
}

// New returns an empty table configured by cfg.
func New(cfg Config) *Table {
	n := cfg.Shards
	if n <= 0 {
		n = 16
	}
	n = min(n, maxShards)
	b := uint(bits.Len(uint(n - 1)))
	t := &Table{shardBits: b}
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	t.shards = make([]*shard, 1<<b)
	slots := indexSlotsFor(cfg.MaxConns, len(t.shards))
	// Room for the chunk pointers of a full table, with every shard's last block
	// partly used, so that they are rarely reallocated.
	t.slab.init(slots*3/4*len(t.shards) + blockLen*len(t.shards))
	for i := range t.shards {
		t.shards[i] = newShard(i, &t.seed, &t.slab, slots)
	}
	t.frags.init(&t.seed)
	t.cfg.Store(newSettings(cfg))
	return t
}

// Reconfigure applies new timeouts, limits and strictness; every entry is kept
// (and taken back from a fast path, which is told the new settings at its next
// hand-over).
// Timeouts apply from the next check on (an entry idle longer than its new timeout
// expires at once). Shards cannot change and are ignored.
func (t *Table) Reconfigure(cfg Config) {
	s := newSettings(cfg)
	// The lists were ordered with the old slices: a slice may grow, never shrink,
	// or expiry could stop before an entry that is due (see sliceShiftFor).
	old := t.cfg.Load()
	for c := range s.shift {
		s.shift[c] = max(s.shift[c], old.shift[c])
	}
	t.cfg.Store(s)
	t.reclaimAll()
}

// Len returns the number of connections in the table.
func (t *Table) Len() int { return int(max(t.count.Load(), 0)) }

func (t *Table) shardOf(h uint64) *shard {
	return t.shards[(h>>32)&(1<<t.shardBits-1)]
}

// timeoutOf is entry e's (of shard sh) current idle timeout, adaptive scaling
// included.
func (t *Table) timeoutOf(s *settings, sh *shard, e *entry) int64 {
	return t.timeoutFor(s, sh, sh.profileOf(e), e.class())
}

// timeoutFor is the current idle timeout of class c in timeout profile p of shard
// sh, adaptive scaling included.
func (t *Table) timeoutFor(s *settings, sh *shard, p uint8, c class) int64 {
	to := sh.profileTimeout(s, p, c)
	if s.adaptiveEnd == 0 {
		// No adaptive scaling: do not read the table size, a cache line that
		// every Create on every core writes.
		return to
	}
	return s.scaled(to, t.count.Load())
}

func (t *Table) expiredAt(s *settings, sh *shard, e *entry, now int64) bool {
	return now-e.lastSeen >= t.timeoutOf(s, sh, e)
}

// strictFor reports whether a connection whose rule's handshake mode is h must
// have its handshake seen.
func (s *settings) strictFor(h Handshake) bool {
	switch h {
	case HandshakeStrict:
		return true
	case HandshakeLoose:
		return false
	}
	return s.strict
}

func ipBytes(p *packet.Parsed) int {
	if p.IPLen > 0 {
		return p.IPLen
	}
	return p.Length
}

func drop(r reason.Reason) Result { return Result{Verdict: Drop, Reason: r} }

// Track looks p up and, if it belongs to a connection, advances that connection's
// state. It never allocates. Verdict NewConn means the engine should evaluate its
// rules and call Create (or drop).
func (t *Table) Track(p *packet.Parsed, now int64) (r Result) {
	t.TrackInto(p, now, &r)
	return r
}

// TrackInto is Track writing its answer into r, which it overwrites: the per-packet
// path of the engine keeps its Result inside its own decision instead of copying
// one back through every call.
func (t *Table) TrackInto(p *packet.Parsed, now int64, r *Result) {
	if !fastPathable(p) {
		*r = t.trackSpecial(p, now)
		return
	}
	var k Key
	k.fill(p)
	*r = Result{}
	t.track(p, &k, k.hash(&t.seed), now, r)
}

// trackSpecial answers a packet that is not looked up by its own tuple (see
// fastPathable): refused outright, a later fragment, or an ICMP error.
func (t *Table) trackSpecial(p *packet.Parsed, now int64) Result {
	switch {
	case !p.Src.IsValid() || !p.Dst.IsValid():
		return drop(reason.Unsupported)
	case p.Frag == packet.LaterFragment:
		return t.frags.follow(p, now, &t.stats)
	case p.Proto == packet.ProtoTCP:
		return drop(reason.InvalidTCPFlags)
	}
	return t.related(p, now) // an ICMP or ICMPv6 error
}

// Probe is a packet's place in the table, worked out ahead by Prepare so that a
// batch of packets can start loading their index slots and entries before any of
// them is tracked. The zero Probe is "not prepared".
type Probe struct {
	key   Key
	hash  uint64
	keyed bool
}

// Prepare computes p's key and hash into pr and starts loading its index slot
// into the cache. It takes no lock and changes nothing: a batch calls it for
// every packet first, then Warm, then TrackPrepared, so that the memory latency
// of each step is spent while the other packets are worked on.
func (t *Table) Prepare(p *packet.Parsed, pr *Probe) {
	pr.keyed = false
	if !fastPathable(p) {
		return // TrackPrepared falls back to TrackInto
	}
	pr.key.fill(p)
	pr.hash = pr.key.hash(&t.seed)
	pr.keyed = true
	t.shardOf(pr.hash).warmSlot(pr.hash)
}

// Warm starts loading the entry pr's index slot points to, if any. Call it some
// time after Prepare, when the slot has arrived.
func (t *Table) Warm(pr *Probe) {
	if pr.keyed {
		t.shardOf(pr.hash).warmEntry(pr.hash)
	}
}

// TrackPrepared is TrackInto for a packet Prepare has seen (pr; nil if none): the
// same answer, without building and hashing its key again.
func (t *Table) TrackPrepared(p *packet.Parsed, pr *Probe, now int64, r *Result) {
	if pr == nil || !pr.keyed {
		t.TrackInto(p, now, r)
		return
	}
	*r = Result{}
	t.track(p, &pr.key, pr.hash, now, r)
}

// fastPathable reports whether TrackInto looks p up by its own tuple (rather than
// refusing it outright, following a fragment, or matching an ICMP error's quote:
// trackSpecial's cases).
func fastPathable(p *packet.Parsed) bool {
	if !p.Src.IsValid() || !p.Dst.IsValid() || p.Frag == packet.LaterFragment {
		return false
	}
	switch p.Proto {
	case packet.ProtoTCP:
		return validFlags(p.TCPFlags)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return !p.IsICMPError()
	}
	return true
}

// track is TrackInto from the key k of p (hashed h) on.
func (t *Table) track(p *packet.Parsed, k *Key, h uint64, now int64, r *Result) {
	s := t.cfg.Load()
	sh := t.shardOf(h)
	var ended endBuf

	sh.mu.Lock()
	sh.clock = max(sh.clock, now)
	t.reapSomeLocked(sh, s, now, &ended)
	i, dir, ok := sh.lookupLocked(k, h)
	if ok {
		e := sh.at(i)
		if t.expiredNowLocked(sh, i, s, now) {
			t.endLocked(sh, i, s, now, endCauseOf(e), &ended)
			ok = false
		} else {
			t.reclaimLocked(sh, i, s)
			t.updateLocked(sh, i, e, e.list(), dir, p, s, now, &ended, r)
			ok = r.Verdict != 0
		}
	}
	if !ok {
		*r = t.missLocked(sh, k, h, p, s, now)
	}
	sh.mu.Unlock()

	if ended.b != nil {
		ended.flush(s)
	}
	if p.Frag == packet.FirstFragment && r.Verdict == Accept {
		t.frags.remember(p, r, now)
	}
}

// updateLocked advances connection i (entry e, on list from) with packet p
// travelling in direction dir, writing the answer to r.
func (t *Table) updateLocked(sh *shard, i uint32, e *entry, from class, dir Dir, p *packet.Parsed, s *settings, now int64, ended *endBuf, r *Result) {
	if p.Proto == packet.ProtoTCP {
		t.updateTCPLocked(sh, i, e, from, dir, p, s, now, ended, r)
		return
	}
	before := e.state()
	if dir == Reply && !e.has(fSeenReply) {
		e.set(fSeenReply | fAssured)
		switch e.state() {
		case StateUDPUnreplied:
			e.setState(StateUDPReplied)
		case StateICMPUnreplied:
			e.setState(StateICMPReplied)
		case StateOtherUnreplied:
			e.setState(StateOtherReplied)
		}
	}
	old := e.lastSeen
	e.lastSeen = max(old, now)
	e.account(dir, ipBytes(p))
	sh.touchLocked(s, from, i, e, old)
	t.changedLocked(sh, i, e, s, e.state() != before, now, ended)
	sh.acceptLocked(e, dir, r)
}

// changedLocked tells OnChange of entry e's new state, or marks it for the next
// SweepUpdates when only its times, windows or counters changed.
func (t *Table) changedLocked(sh *shard, i uint32, e *entry, s *settings, stateChanged bool, now int64, ended *endBuf) {
	if stateChanged && s.onChange != nil {
		// The change carries a fresh record: no need to sweep it too.
		t.noteLocked(ended, sh, e, s, ChangeState, 0, now)
		return
	}
	sh.markDirtyLocked(s, i, e)
}

// acceptLocked fills r with an Accept for connection e.
func (sh *shard) acceptLocked(e *entry, dir Dir, r *Result) {
	r.Verdict, r.Dir, r.State, r.ID, r.Meta = Accept, dir, e.state(), sh.id(e), sh.metas[e.metaIndex()]
}

// refuseLocked fills r with a Drop that still names the connection, for the logs.
func (sh *shard) refuseLocked(e *entry, dir Dir, why reason.Reason, r *Result) {
	sh.acceptLocked(e, dir, r)
	r.Verdict, r.Reason = Drop, why
}

// updateTCPLocked runs the TCP state machine and window checks. On a reopening SYN it
// ends the old connection and leaves r zero, which Track turns into a miss.
func (t *Table) updateTCPLocked(sh *shard, i uint32, e *entry, from class, dir Dir, p *packet.Parsed, s *settings, now int64, ended *endBuf, r *Result) {
	old := e.state()
	fc := flagClass(p.TCPFlags)
	next := tcpNext[dir][fc][old]
	if next == sIG && fc == fcSynAck && dir == Reply && sh.resyncLocked(i, e, p) {
		// The SYN-ACK answers a SYN the connection ignored: the hosts are in a
		// new connection on these ports (see resync.go).
		old, next = StateSynSent, sSR
	}
	switch {
	case next == sIV:
		why := reason.InvalidState
		if inHandshake(old) {
			why = reason.HandshakeWrongDirection
		}
		sh.refuseLocked(e, dir, why, r)
		return
	case reopens(fc, dir, old):
		// A new connection on the tuple of a closed one (RFC 1122 4.2.2.13): end the
		// old one; the engine decides on the new one as for any SYN.
		t.endLocked(sh, i, s, now, EndReopened, ended)
		return
	case next == sIG:
		if fc == fcSyn && dir == Original {
			sh.noteSynLocked(i, e, p)
		}
		if fc == fcAck && dir == Reply && old == StateSynSent && e.tcp[Reply].maxwin == 0 {
			// The responder answers the SYN with an ACK: a challenge ACK (RFC 5961
			// section 4) from a connection it still holds on these ports, which
			// the originator answers with a RST at the ACK's acknowledgement
			// number to clear it before its SYN can succeed. The reply side's
			// window state is not in use before its SYN-ACK: its end keeps the
			// number, for that RST.
			e.tcp[Reply].end = p.Ack
			sh.markDirtyLocked(s, i, e)
		}
		e.account(dir, ipBytes(p))
		sh.acceptLocked(e, dir, r)
		return
	case fc == fcSyn && dir == Original && old == StateSynSent && !after(segEnd(p), e.tcp[Original].end):
		// A retransmitted SYN, or one that carries less of the data of the first
		// (TCP Fast Open retransmits its SYN without the data): it passes, but
		// does not refresh the timer, so that a client retrying forever does not
		// keep a half-open entry alive.
		e.account(dir, ipBytes(p))
		sh.acceptLocked(e, dir, r)
		return
	case fc == fcRst && dir == Original && old == StateSynSent && e.tcp[Reply].maxwin == 0 && p.Seq == e.tcp[Reply].end:
		// The RST that answers a challenge ACK (see above): its sequence number
		// is from the connection the responder still holds, not this one's.
		e.setState(StateClose)
		e.account(dir, ipBytes(p))
		oldSeen := e.lastSeen
		e.lastSeen = max(oldSeen, now)
		sh.touchLocked(s, from, i, e, oldSeen)
		t.changedLocked(sh, i, e, s, true, now, ended)
		sh.acceptLocked(e, dir, r)
		return
	}
	if old == StateSynRecv && dir == Reply && fc == fcAck && e.dflags[Original]&dfDataAck != 0 {
		// A simultaneous open (the originator sent a SYN-ACK of its own, which
		// in SYN_RECV nothing else does): either side's ACK completes it, as
		// Linux's IP_CT_TCP_SIMULTANEOUS_OPEN has it.
		next = sES
	}
	if e.unverifiable(dir, p) {
		// See "Relearning is liberal ..." in relearn.go.
		if fc == fcRst {
			sh.refuseLocked(e, dir, reason.OutOfWindow, r)
			return
		}
		e.account(dir, ipBytes(p))
		sh.acceptLocked(e, dir, r)
		return
	}
	// A RST on an established connection closes it only if its sequence number is
	// exactly the sender's next (see below); inWindow's updates are undone for one
	// that is not.
	// A relearning connection's RSTs are checked too (see relearn.go).
	blind := fc == fcRst && old == StateEstablished && e.has(fAssured) && (!e.has(fLiberal) || e.relearning())
	var tcpBefore [2]tcpDir
	var dflagsBefore [2]uint8
	if blind {
		tcpBefore, dflagsBefore = e.tcp, e.dflags
	}
	// from was taken before inWindow, which may change the class (dfUnacked).
	switch e.inWindow(dir, p, old) {
	case windowInvalid:
		sh.touchLocked(s, from, i, e, e.lastSeen)
		sh.refuseLocked(e, dir, reason.OutOfWindow, r)
		return
	case windowIgnore:
		// Passes without a state change or a refreshed timer, as an ignored
		// packet of the transition table does (the sender's end may have moved).
		sh.touchLocked(s, from, i, e, e.lastSeen)
		sh.markDirtyLocked(s, i, e)
		e.account(dir, ipBytes(p))
		sh.acceptLocked(e, dir, r)
		return
	}
	if blind && p.Seq != tcpBefore[dir].end {
		// RFC 5961 section 3.2: an end host aborts only on a RST whose sequence
		// number is exactly the next it expects, and answers any other RST in its
		// window with a challenge ACK, which the real peer answers with an exact
		// RST. Closing here would let one blind guess at the window (a 64 KiB
		// window is one in 65 536 of the sequence space) cut a connection both
		// hosts keep: every later packet would be dropped. The RST passes, so the
		// challenge can happen, and changes nothing: the connection keeps its
		// state, windows and timer, as Linux's conntrack does.
		//
		// "Next" is the highest sequence number the sender has sent. Linux compares
		// with the highest the receiver has acknowledged, which the entry has no
		// room to keep. The two differ only while the sender has data in flight;
		// a RST sent then at the last acknowledged number (by a host whose socket
		// is gone, answering with the segment's ACK) leaves the connection here to
		// the unacknowledged-data timeout instead of closing it.
		e.tcp, e.dflags = tcpBefore, dflagsBefore
		sh.st.rstInexact++
		e.account(dir, ipBytes(p))
		sh.acceptLocked(e, dir, r)
		return
	}

	ns := State(next)
	e.setState(ns)
	if dir == Reply && !e.has(fSeenReply) {
		e.set(fSeenReply)
	}
	if e.has(fLiberal) && e.tcp[Original].maxwin != 0 && e.tcp[Reply].maxwin != 0 {
		// Both directions have now been seen and initialised the window state
		// from real packets (whichever side was picked up first): from here on
		// the windows are enforced.
		e.clear(fLiberal)
		e.set(fAssured)
	}
	if ns == StateEstablished && old == StateSynRecv {
		e.set(fAssured)
	}
	oldSeen := e.lastSeen
	e.lastSeen = max(oldSeen, now)
	e.account(dir, ipBytes(p))
	sh.touchLocked(s, from, i, e, oldSeen)
	t.changedLocked(sh, i, e, s, ns != old, now, ended)
	sh.acceptLocked(e, dir, r)
}

// missLocked answers a packet that matches no live connection.
func (t *Table) missLocked(sh *shard, k *Key, h uint64, p *packet.Parsed, s *settings, now int64) Result {
	switch p.Proto {
	case packet.ProtoTCP:
		fc := flagClass(p.TCPFlags)
		if fc == fcSyn {
			return Result{Verdict: NewConn}
		}
		// A pickup goes to the rules when the table or some rule is loose: the
		// rule that permits the connection decides (StrictReason is what a strict
		// one drops it with).
		pickups := !s.strict || s.looseRules
		if tb, dir, ok := sh.tombs.lookup(k, h, now, s.tombTTL); ok {
			sh.st.tombHits++
			r := tb.result(sh, dir, now)
			switch {
			case tb.cause == EndRuleChanged:
				r.Reason = reason.RuleChanged
			case pickups && fc == fcAck && tb.cause == EndExpired && tb.state == StateEstablished:
				// Loose mode picks an idle-expired connection up again, as it
				// would any mid-stream packet; the tombstone is still reported.
				r.Verdict, r.Reason, r.StrictReason = NewConn, reason.None, reason.StateExpired
			}
			return r
		}
		if fc == fcAck && s.recovering(now) {
			return Result{Verdict: NewConn} // whatever the rule: see Config.RecoverUntil
		}
		if pickups && fc == fcAck {
			return Result{Verdict: NewConn, StrictReason: reason.HandshakeNotCompleted}
		}
		if pickups && fc == fcSynAck {
			// Loose mode: the SYN went another way (an asymmetric path). A SYN-ACK is
			// a reply by definition, so the connection it belongs to was opened by
			// its destination: Dir tells the engine to create it that way round.
			return Result{Verdict: NewConn, Dir: Reply, StrictReason: reason.HandshakeNotCompleted}
		}
		return drop(reason.HandshakeNotCompleted)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if p.IsEchoReply() {
			if tb, dir, ok := sh.tombs.lookup(k, h, now, s.tombTTL); ok {
				sh.st.tombHits++
				return tb.result(sh, dir, now)
			}
			// An echo reply that answers no request we saw.
			return drop(reason.InvalidState)
		}
	}
	return Result{Verdict: NewConn}
}

// initialState decides what connection p opens, or why it cannot open one.
// stateless is true for ICMP informational messages other than echo, which pass
// without an entry.
func initialState(p *packet.Parsed, strict bool) (st State, liberal, stateless bool, why reason.Reason) {
	switch p.Proto {
	case packet.ProtoTCP:
		if !validFlags(p.TCPFlags) {
			return 0, false, false, reason.InvalidTCPFlags
		}
		switch flagClass(p.TCPFlags) {
		case fcSyn:
			return StateSynSent, false, false, reason.None
		case fcAck:
			if !strict {
				return StateEstablished, true, false, reason.None
			}
		}
		return 0, false, false, reason.HandshakeNotCompleted
	case packet.ProtoUDP:
		return StateUDPUnreplied, false, false, reason.None
	case packet.ProtoICMP, packet.ProtoICMPv6:
		switch {
		case p.IsICMPError():
			return 0, false, false, reason.ICMPUnrelated
		case p.IsEchoRequest():
			return StateICMPUnreplied, false, false, reason.None
		case p.IsEchoReply():
			return 0, false, false, reason.InvalidState
		}
		return 0, false, true, reason.None
	}
	return StateOtherUnreplied, false, false, reason.None
}

// Create opens a connection for p, which Track answered New, storing m with it. It
// returns Accept, or Drop with ConnectionLimit, TableFull, or the reason p cannot
// open a connection. If the connection exists already (another goroutine created it
// in between), p is tracked on it instead.
func (t *Table) Create(p *packet.Parsed, now int64, m Meta) Result {
	return t.CreateAs(p, now, m, Original)
}

// CreateAs is Create for a packet whose direction in the new connection is as.
// Reply is only for picking up a TCP connection mid-stream in loose mode from a
// packet its responder sent (a SYN-ACK whose SYN went another way, or a reply the
// rules permit only the other way round): the connection's original direction, the
// source its per-source limits count against and its window state then all start
// from the responder's packet. Any other use of Reply is refused as InvalidState.
func (t *Table) CreateAs(p *packet.Parsed, now int64, m Meta, as Dir) Result {
	var r Result
	t.CreatePrepared(p, nil, now, m, as, &r)
	return r
}

// CreatePrepared is CreateAs writing its answer into r, for a packet Prepare has
// seen (pr; nil if none): the key and hash are not worked out again.
func (t *Table) CreatePrepared(p *packet.Parsed, pr *Probe, now int64, m Meta, as Dir, r *Result) {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		*r = drop(reason.Unsupported)
		return
	}
	if p.Frag == packet.LaterFragment {
		*r = drop(reason.Fragment)
		return
	}
	*r = t.create(p, pr, now, m, as)
}

func (t *Table) create(p *packet.Parsed, pr *Probe, now int64, m Meta, as Dir) Result {
	s := t.cfg.Load()
	strict := s.strictFor(m.Handshake)
	if strict && p.Proto == packet.ProtoTCP && flagClass(p.TCPFlags) == fcAck && s.recovering(now) {
		strict = false // the recovery window after an unclean start: see Config.RecoverUntil
	}
	st, liberal, stateless, why := initialState(p, strict)
	if as == Reply {
		st, liberal, stateless, why = replyPickupState(p, strict)
	}
	if why != reason.None {
		return drop(why)
	}
	if stateless {
		return Result{Verdict: Accept, Meta: m}
	}
	// pk is the packet's own tuple, which finds an existing entry either way
	// round; k is the new connection's original tuple.
	var pk, k Key
	var h uint64
	if pr != nil && pr.keyed {
		pk, h = pr.key, pr.hash
	} else {
		pk.fill(p)
		h = pk.hash(&t.seed)
	}
	k = pk
	if as == Reply {
		k = pk.reverse()
	}
	sh := t.shardOf(h)

	var cn counts
	if lim := t.countNew(s, &k, m, now, &cn); lim != NoLimit {
		t.stats.connLimit.Add(1)
		r := drop(reason.ConnectionLimit)
		r.Limit = lim
		return r
	}
	if !t.reserve(s, now) {
		t.uncount(&k, m, now, cn)
		t.stats.tableFull.Add(1)
		return drop(reason.TableFull)
	}

	var ended endBuf
	sh.mu.Lock()
	sh.clock = max(sh.clock, now)
	i, dir, ok := sh.lookupLocked(&pk, h)
	if ok && t.expiredAt(s, sh, sh.at(i), now) {
		t.endLocked(sh, i, s, now, endCauseOf(sh.at(i)), &ended)
		ok = false
	}
	if ok && st == StateSynSent && reopens(fcSyn, dir, sh.at(i).state()) {
		// Create without Track for a SYN reopening a closed tuple.
		t.endLocked(sh, i, s, now, EndReopened, &ended)
		ok = false
	}
	var r Result
	switch {
	case ok:
		t.count.Add(-1)
		t.uncount(&k, m, now, cn)
		t.updateLocked(sh, i, sh.at(i), sh.at(i).list(), dir, p, s, now, &ended, &r)
	default:
		i = sh.insertLocked(&k, h) // the hash does not depend on direction
		if i == nilIdx {
			t.count.Add(-1)
			t.uncount(&k, m, now, cn)
			t.stats.tableFull.Add(1)
			r = drop(reason.TableFull)
			break
		}
		r = t.initEntryLocked(sh, s, i, p, now, m, st, liberal, cn, as)
		if s.onChange != nil {
			t.noteLocked(&ended, sh, sh.at(i), s, ChangeCreated, 0, now)
		}
	}
	sh.mu.Unlock()

	ended.flush(s)
	if p.Frag == packet.FirstFragment && r.Verdict == Accept {
		t.frags.remember(p, &r, now)
	}
	return r
}

func (t *Table) initEntryLocked(sh *shard, s *settings, i uint32, p *packet.Parsed, now int64, m Meta, st State, liberal bool, cn counts, dir Dir) Result {
	e := sh.at(i)
	e.setState(st)
	if cn.table {
		e.set(fCounted)
	}
	e.lastSeen = now
	e.created = uint32(max(now, 0) / 1e9)
	sh.seq++
	e.idSeq = sh.seq
	if idx, ok := sh.internLocked(s, m); ok {
		e.meta = idx
	} else {
		sh.st.metaOverflow++
		if cn.rule {
			// Stored as Meta{}, which counts against no rule.
			t.src.release(&t.seed, srcKey{src: e.key.Src, rule: m.Rule}, now)
		}
	}
	if p.Proto == packet.ProtoTCP {
		if liberal {
			// Picked up mid-stream: the SYNs (and their window scale) were not
			// seen, so assume the largest scale and SACK on both sides, and let
			// inWindow initialise this side from the packet.
			e.set(fLiberal)
			e.dflags = [2]uint8{pickupScale | dfSACK, pickupScale | dfSACK}
			e.inWindow(dir, p, StateNone)
		} else {
			e.initSyn(Original, p, segEnd(p))
		}
	}
	if dir == Reply {
		e.set(fSeenReply)
	}
	e.account(dir, ipBytes(p))
	sh.pushBackLocked(e.class(), i)
	sh.st.created++
	var r Result
	sh.acceptLocked(e, dir, &r)
	return r
}

// counts says which per-source counts a new connection was counted in.
type counts struct{ table, rule bool }

// countNew counts a new connection of original tuple k and Meta m in the
// per-source counts that apply, or reports the limit that refuses it (counting
// nothing then).
func (t *Table) countNew(s *settings, k *Key, m Meta, now int64, cn *counts) Limit {
	if s.perSrcConns > 0 || s.perSrcRate > 0 {
		if lim := t.src.acquire(&t.seed, srcKey{src: k.Src}, now, s.perSrcConns, s.perSrcRate, LimitConcurrent); lim != NoLimit {
			return lim
		}
		cn.table = true
	}
	if m.MaxPerSource > 0 && m.Rule != 0 {
		if lim := t.src.acquire(&t.seed, srcKey{k.Src, m.Rule}, now, m.MaxPerSource, 0, LimitRule); lim != NoLimit {
			t.uncount(k, m, now, *cn)
			*cn = counts{}
			return lim
		}
		cn.rule = true
	}
	return NoLimit
}

// uncount undoes countNew.
func (t *Table) uncount(k *Key, m Meta, now int64, cn counts) {
	if cn.table {
		t.src.release(&t.seed, srcKey{src: k.Src}, now)
	}
	if cn.rule {
		t.src.release(&t.seed, srcKey{k.Src, m.Rule}, now)
	}
}

// replyPickupState is initialState for a TCP packet that picks a connection up in
// loose mode from its responder's side.
func replyPickupState(p *packet.Parsed, strict bool) (st State, liberal, stateless bool, why reason.Reason) {
	if p.Proto != packet.ProtoTCP || strict {
		return 0, false, false, reason.InvalidState
	}
	if !validFlags(p.TCPFlags) {
		return 0, false, false, reason.InvalidTCPFlags
	}
	switch flagClass(p.TCPFlags) {
	case fcSynAck, fcAck:
		return StateEstablished, true, false, reason.None
	}
	return 0, false, false, reason.HandshakeNotCompleted
}

// endCauseOf is why an entry that timed out ended: closed if its TCP state says the
// connection was being torn down, expired otherwise.
func endCauseOf(e *entry) EndCause {
	switch e.state() {
	case StateTimeWait, StateClose, StateLastAck:
		return EndClosed
	}
	return EndExpired
}

// endLocked removes entry i: off its list, out of the index, into the tombstones (unless
// reopened), out of the per-source count, and queued for OnEnd.
func (t *Table) endLocked(sh *shard, i uint32, s *settings, now int64, cause EndCause, ended *endBuf) {
	e := sh.at(i)
	onList := e.list()
	t.takeBackLocked(e) // its last packets' counters and time, and out of the kernel
	timeout := t.timeoutOf(s, sh, e)
	endedAt := now
	switch cause {
	case EndExpired, EndClosed:
		endedAt = e.lastSeen + timeout
		if cause == EndExpired {
			sh.st.expired++
		} else {
			sh.st.closed++
		}
	case EndEvicted:
		sh.st.evicted++
	case EndFlushed, EndRuleChanged:
		sh.st.flushed++
	case EndReopened:
		sh.st.reopened++
	}
	h := e.key.hash(sh.seed)
	if cause != EndReopened && s.tombCap > 0 {
		sh.tombs.insert(s, len(t.shards), &e.key, h, tombstone{
			state: e.state(), cause: cause, lastSeen: e.lastSeen, endedAt: endedAt,
			id: tombID(sh.id(e), e.class(), e.metaIndex()),
		})
	}
	if e.has(fCounted) {
		t.src.release(&t.seed, srcKey{src: e.key.Src}, now)
	}
	if m := sh.metas[e.metaIndex()]; m.MaxPerSource > 0 && m.Rule != 0 {
		t.src.release(&t.seed, srcKey{e.key.Src, m.Rule}, now)
	}
	if s.onEnd != nil {
		ended.add(t.infoLocked(sh, e, s), cause)
	}
	if s.onChange != nil {
		t.noteLocked(ended, sh, e, s, ChangeEnded, cause, now)
	}
	sh.unlinkLocked(onList, i)
	sh.releaseLocked(i, h)
	t.count.Add(-1)
}

// infoLocked describes entry e.
func (t *Table) infoLocked(sh *shard, e *entry, s *settings) ConnInfo {
	return ConnInfo{
		ID:       sh.id(e),
		Src:      addr(e.key.Src),
		Dst:      addr(e.key.Dst),
		SrcPort:  fromBE16(e.key.SrcPort),
		DstPort:  fromBE16(e.key.DstPort),
		Proto:    packet.Proto(e.key.Proto),
		State:    e.state(),
		Created:  int64(e.created) * 1e9,
		LastSeen: e.lastSeen,
		Timeout:  durationNS(t.timeoutOf(s, sh, e)),
		Assured:  e.has(fAssured),
		Packets:  [2]uint64{e.packets(Original), e.packets(Reply)},
		Bytes:    [2]uint64{e.bytes(Original), e.bytes(Reply)},
		Meta:     sh.metas[e.metaIndex()],
	}
}
