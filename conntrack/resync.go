package conntrack

import "keepstate/packet"

// A firewall can fall out of step with the hosts it sits between: it holds a
// connection whose end it never saw (a FIN or RST that went another way, a host
// that rebooted) when the client opens a new one on the same ports. The new SYN
// must be ignored (it may be a stray of the old connection, and the server will
// tell: it answers a real new SYN with a SYN-ACK, a stale one with a challenge
// ACK), but then the server's SYN-ACK that acknowledges it says that both hosts
// are in the new connection, and the firewall must follow them there, or it drops
// the whole new connection as out of the old one's window. Linux annotates the
// ignored SYN in its connection (last_end, last_win, last_wscale); an entry has no
// room for that, so a shard keeps the last few ignored SYNs aside: ignored SYNs
// are rare, and a hint only has to live for one round trip.

// resyncHint is a SYN that an existing connection ignored.
type resyncHint struct {
	idx    uint32 // the entry's index + 1; 0 for an empty slot
	idSeq  uint32 // the entry's id sequence, so that a reused entry does not match
	seen   int64  // the entry's lastSeen then: any packet the entry took since voids the hint
	end    uint32 // the SYN's sequence number after it
	win    uint16 // its window
	dflags uint8  // its window scale and options, as synOptions records them
}

// resyncHints is how many ignored SYNs a shard remembers.
const resyncHints = 8

type resyncHints8 struct {
	h    [resyncHints]resyncHint
	next uint8
}

// noteSynLocked remembers the SYN p that entry i (e) ignored.
func (sh *shard) noteSynLocked(i uint32, e *entry, p *packet.Parsed) {
	var opts entry
	opts.synOptions(Original, p)
	hs := &sh.resync
	hs.h[hs.next] = resyncHint{
		idx: i + 1, idSeq: e.idSeq, seen: e.lastSeen,
		end: segEnd(p), win: p.Window, dflags: opts.dflags[Original],
	}
	hs.next = (hs.next + 1) % resyncHints
}

// resyncLocked starts entry i (e) over from the SYN it ignored last if p, a
// SYN-ACK from the reply side, acknowledges exactly that SYN and the entry took no
// packet in between. The originator's window state becomes the SYN's and the
// reply side's is cleared, as after the SYN of a new connection: p then goes
// through the window check as the SYN-ACK of SYN_SENT.
func (sh *shard) resyncLocked(i uint32, e *entry, p *packet.Parsed) bool {
	hs := &sh.resync
	for k := range hs.h {
		h := &hs.h[k]
		if h.idx != i+1 || h.idSeq != e.idSeq {
			continue
		}
		if h.seen != e.lastSeen || p.TCPFlags&packet.ACK == 0 || p.Ack != h.end {
			return false
		}
		keep := e.dflags[Original] & dfDataAck
		e.tcp[Original] = tcpDir{end: h.end, maxend: h.end, maxwin: max(uint32(h.win), 1)}
		e.tcp[Reply] = tcpDir{}
		e.dflags = [2]uint8{h.dflags | keep, 0}
		e.clear(fLiberal)
		*h = resyncHint{}
		return true
	}
	return false
}
