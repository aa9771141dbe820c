package dataplane

import (
	"sync"

	"keepstate/logging"
	"keepstate/packet"
	"keepstate/reason"
)

// FeedFrameBytes is how much of each dropped frame a DropFeed keeps: enough for
// the link, IP and transport headers that explain and the live log read.
const FeedFrameBytes = 192

// DropRecord is one dropped packet kept by a DropFeed.
type DropRecord struct {
	Seq       uint64 // 1 for the first drop the feed saw
	Time      int64  // Unix ns
	Reason    reason.Reason
	Rule      string // the rule that decided, if one did
	Iface     string // ingress interface
	ConnState string
	Link      packet.LinkType
	WireLen   int // the frame's length on the wire
	n         int
	frame     [FeedFrameBytes]byte
}

// Frame is the start of the dropped frame (at most FeedFrameBytes).
func (r *DropRecord) Frame() []byte { return r.frame[:r.n] }

// DropFeed keeps the most recent drops in a ring of fixed size, for live views
// (the web administration's drop log) and anything else that follows drops as
// they happen. Adding never allocates; a reader that falls behind by more than
// the ring learns how many drops it missed.
type DropFeed struct {
	mu   sync.Mutex
	ring []DropRecord
	next uint64 // Seq of the next drop
}

// NewDropFeed returns a feed that keeps the last n drops.
func NewDropFeed(n int) *DropFeed {
	return &DropFeed{ring: make([]DropRecord, max(n, 1)), next: 1}
}

// add records a drop; ev is the event the Reporter built for the logs.
func (f *DropFeed) add(t int64, frame []byte, link packet.LinkType, ev *logging.PacketEvent) {
	f.mu.Lock()
	r := &f.ring[f.next%uint64(len(f.ring))]
	r.Seq, r.Time, r.Reason = f.next, t, ev.Reason
	r.Rule, r.Iface, r.ConnState = ev.Rule, ev.Iface, ev.ConnState
	r.Link, r.WireLen = link, len(frame)
	if ev.P != nil && ev.P.IPLen > 0 {
		r.WireLen = max(r.WireLen, ev.P.IPOffset+ev.P.IPLen)
	}
	r.n = copy(r.frame[:], frame)
	f.next++
	f.mu.Unlock()
}

// Since returns up to limit drops with Seq >= seq, oldest first, and the Seq to
// ask for next time. missed counts the drops after seq that the ring no longer
// holds. seq 0 means "from the oldest kept".
func (f *DropFeed) Since(seq uint64, limit int) (recs []DropRecord, next, missed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldest := uint64(1)
	if f.next > uint64(len(f.ring)) {
		oldest = f.next - uint64(len(f.ring))
	}
	if seq == 0 {
		seq = oldest
	}
	if seq < oldest {
		missed, seq = oldest-seq, oldest
	}
	for ; seq < f.next && len(recs) < limit; seq++ {
		recs = append(recs, f.ring[seq%uint64(len(f.ring))])
	}
	return recs, seq, missed
}

// Get returns the drop numbered seq if the ring still holds it.
func (f *DropFeed) Get(seq uint64) (DropRecord, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ring[seq%uint64(len(f.ring))]
	return r, seq != 0 && r.Seq == seq
}

// Next is the Seq the next drop will get.
func (f *DropFeed) Next() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}
