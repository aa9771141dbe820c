package conntrack

import (
	"sync"

	"keepstate/packet"
	"keepstate/reason"
)

// fragKey identifies the fragments of one datagram (RFC 791 / RFC 8200).
type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragEntry struct {
	key     fragKey
	expires int64 // Unix ns; 0 = empty
	dir     Dir
	state   State
	id      uint64
	meta    Meta
}

// fragSlots is the size of the fragment cache. Only datagrams whose first fragment
// was accepted and whose later fragments are still in flight occupy a slot, so a
// small direct-mapped array suffices; a collision only costs the older datagram its
// tail (dropped as reason.Fragment, and the sender retransmits).
const fragSlots = 1024

// fragCache remembers the verdict given to first fragments so that later fragments,
// which carry no ports, follow it. It has its own lock: fragments are rare and never
// on the established path.
type fragCache struct {
	mu    sync.Mutex
	seed  *hashSeed
	slots []fragEntry
}

func (fc *fragCache) init(seed *hashSeed) { fc.seed = seed }

func fragKeyOf(p *packet.Parsed) fragKey {
	return fragKey{src: p.Src.As16(), dst: p.Dst.As16(), id: p.IPID, proto: uint8(p.Proto)}
}

func (fc *fragCache) slot(k *fragKey) *fragEntry {
	h := endpointHash(fc.seed, k.src, [2]byte{k.proto, byte(k.id)}) ^
		endpointHash(fc.seed, k.dst, [2]byte{byte(k.id >> 8), byte(k.id >> 16)})
	return &fc.slots[mum(h, fc.seed[2]^uint64(k.id))%fragSlots]
}

// remember records that the first fragment p was accepted as r.
func (fc *fragCache) remember(p *packet.Parsed, r *Result, now int64) {
	k := fragKeyOf(p)
	fc.mu.Lock()
	if fc.slots == nil {
		fc.slots = make([]fragEntry, fragSlots) // most tables never see a fragment
	}
	*fc.slot(&k) = fragEntry{key: k, expires: now + int64(fragTTL), dir: r.Dir, state: r.State, id: r.ID, meta: r.Meta}
	fc.mu.Unlock()
}

// follow answers a later fragment with its first fragment's verdict.
func (fc *fragCache) follow(p *packet.Parsed, now int64, st *counters) Result {
	k := fragKeyOf(p)
	var fe fragEntry
	fc.mu.Lock()
	if fc.slots != nil {
		fe = *fc.slot(&k)
	}
	fc.mu.Unlock()
	if fe.expires == 0 || now >= fe.expires || fe.key != k {
		st.fragMisses.Add(1)
		return drop(reason.Fragment)
	}
	st.fragHits.Add(1)
	return Result{Verdict: Accept, Dir: fe.dir, State: fe.state, ID: fe.id, Meta: fe.meta}
}
