package conntrack

import (
	"time"
)

// Defaults of the Config fields whose zero value means "default".
const (
	DefaultMaxConns     = 1 << 18 // 262144 connections, about 32 MB
	DefaultTombstoneCap = 1 << 16
	DefaultTombstoneTTL = 24 * time.Hour
	// maxShards bounds Shards: the shard number is the low byte of a connection id.
	maxShards = 256
	// fragTTL is how long a first fragment's verdict is remembered for the later
	// fragments (Linux's ipfrag_time is 30 s).
	fragTTL = 30 * time.Second
)

// Config configures a Table. Zero values mean the defaults documented per field.
type Config struct {
	Timeouts Timeouts
	// Strict is Require3WayHandshake=1: only a SYN opens a TCP connection and the
	// handshake must run in the right directions.
	Strict bool
	// RecoverUntil (Unix ns) makes a Strict table pick up TCP connections from
	// mid-stream packets (ACK, with or without data) before that time, as a loose
	// one does: the window after an unclean start in which the connections the
	// last snapshot missed come back (RecoverAfterCrashSeconds). 0: never.
	RecoverUntil int64
	// MaxConns is the table limit; 0 means DefaultMaxConns, negative means no limit.
	MaxConns int
	// AdaptiveStart, AdaptiveEnd: pf-style adaptive timeouts. Above AdaptiveStart
	// connections every timeout is scaled by (AdaptiveEnd-n)/(AdaptiveEnd-AdaptiveStart).
	// Off unless 0 < AdaptiveStart < AdaptiveEnd.
	AdaptiveStart, AdaptiveEnd int
	// PerSourceConns limits concurrent connections per source address; 0 = unlimited.
	PerSourceConns int
	// PerSourceRate limits new connections per source address per minute (a fixed
	// one-minute window opened by the source's first connection); 0 = unlimited.
	PerSourceRate int
	// TombstoneCap is how many ended connections are remembered; 0 means
	// DefaultTombstoneCap, negative disables tombstones.
	TombstoneCap int
	// TombstoneTTL is how long a tombstone is kept; 0 means DefaultTombstoneTTL.
	TombstoneTTL time.Duration
	// Shards is the number of shards, rounded up to a power of two, at most 256;
	// 0 means 16. It is fixed at New: Reconfigure ignores it.
	Shards int
	// LooseRules: some rule may pick connections up mid-stream (its Meta says
	// HandshakeLoose). Track then answers NewConn, with Result.StrictReason, for
	// a TCP packet that is not a SYN even when Strict, so that the rules decide.
	LooseRules bool
	// Resolve, when set, gives a connection restored from a snapshot its Meta
	// from the Meta the snapshot stored (the rule and flags only): the engine
	// looks the rule's options up in the ruleset in force.
	Resolve func(Meta) Meta
	// OnEnd is called when a connection leaves the table, never with a shard lock
	// held: it may call back into the Table. Calls for different shards may run
	// concurrently.
	OnEnd func(ConnInfo, EndCause)
	// OnChange hears of the changes of a connection's life that others need to
	// know about at once: created, a state change, ended (see Change). It is
	// called with the changes of one shard lock's hold, in order, never with a
	// shard lock held; calls for different shards may run concurrently. The
	// slice is reused after the call returns.
	OnChange func([]Change)
	// TrackUpdates marks the connections whose last-seen time, windows or
	// counters change, for SweepUpdates to collect in batches (a mark, not an
	// event, per packet). Reconfigure may switch it.
	TrackUpdates bool
}

// DefaultConfig returns a strict configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Timeouts:     DefaultTimeouts(),
		Strict:       true,
		MaxConns:     DefaultMaxConns,
		TombstoneCap: DefaultTombstoneCap,
		TombstoneTTL: DefaultTombstoneTTL,
	}
}

// class is a timeout class: every entry on one class list has the same timeout.
type class uint8

const (
	clsSynSent class = iota
	clsSynRecv
	clsEstablished
	clsFinWait
	clsCloseWait
	clsLastAck
	clsTimeWait
	clsClose
	clsPickup  // picked up mid-stream, other direction not seen yet
	clsUnacked // established with data the peer has not acknowledged
	clsUDPUnreplied
	clsUDPReplied
	clsICMPUnreplied
	clsICMPReplied
	clsOtherUnreplied
	clsOtherReplied
	// clsRefiled is a list, not a class an entry has: established connections
	// the unacknowledged-data list hands over when it finds their data acknowledged
	// (see entry.list). It has the established timeout.
	clsRefiled
	numClasses
)

// settings is the immutable form of a Config that the packet path reads through one
// atomic pointer load; Reconfigure swaps it.
type settings struct {
	timeout       [numClasses]int64 // ns
	shift         [numClasses]uint8 // time slice of each class list: see sliceShiftFor
	strict        bool
	looseRules    bool  // Config.LooseRules
	recoverUntil  int64 // Unix ns: see Config.RecoverUntil
	unacked       int64 // TCPUnacked before its cap by the established timeout: profiles cap it by theirs
	resolve       func(Meta) Meta
	maxConns      int64 // 0: unlimited
	adaptiveStart int64
	adaptiveEnd   int64
	perSrcConns   int32
	perSrcRate    int32
	tombCap       int
	tombTTL       int64
	onEnd         func(ConnInfo, EndCause)
	onChange      func([]Change)
	trackUpdates  bool
}

func orDefault(d, def time.Duration) int64 {
	if d <= 0 {
		return int64(def)
	}
	return int64(d)
}

func newSettings(c Config) *settings {
	s := &settings{strict: c.Strict, looseRules: c.LooseRules, recoverUntil: c.RecoverUntil, resolve: c.Resolve, onEnd: c.OnEnd,
		onChange: c.OnChange, trackUpdates: c.TrackUpdates}
	s.unacked = orDefault(c.Timeouts.TCPUnacked, classDef[clsUnacked].Default)
	s.timeout = classTimeouts(&c.Timeouts)
	for c, to := range s.timeout {
		s.shift[c] = sliceShiftFor(to)
	}

	switch {
	case c.MaxConns == 0:
		s.maxConns = DefaultMaxConns
	case c.MaxConns > 0:
		s.maxConns = int64(c.MaxConns)
	}
	if c.AdaptiveStart > 0 && c.AdaptiveEnd > c.AdaptiveStart {
		s.adaptiveStart, s.adaptiveEnd = int64(c.AdaptiveStart), int64(c.AdaptiveEnd)
	}
	s.perSrcConns = int32(max(0, min(c.PerSourceConns, 1<<30)))
	s.perSrcRate = int32(max(0, min(c.PerSourceRate, 1<<30)))
	switch {
	case c.TombstoneCap == 0:
		s.tombCap = DefaultTombstoneCap
	case c.TombstoneCap > 0:
		s.tombCap = c.TombstoneCap
	}
	s.tombTTL = orDefault(c.TombstoneTTL, DefaultTombstoneTTL)
	return s
}

// recovering reports whether now is in the recovery window after an unclean
// start, in which a mid-stream TCP packet (ACK class) may pick a connection up
// whatever the handshake mode of its rule.
func (s *settings) recovering(now int64) bool { return now < s.recoverUntil }

// scaled returns timeout t after pf's adaptive scaling for n connections.
func (s *settings) scaled(t int64, n int64) int64 {
	if s.adaptiveEnd == 0 || n <= s.adaptiveStart {
		return t
	}
	if n >= s.adaptiveEnd {
		return 0
	}
	f := float64(s.adaptiveEnd-n) / float64(s.adaptiveEnd-s.adaptiveStart)
	return int64(float64(t) * f)
}
