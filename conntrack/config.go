package conntrack

import (
	"time"
)

// Timeouts are the idle timeouts per state and protocol. A zero field means "use the
// default" (a zero timeout would make a connection expire on its first packet).
type Timeouts struct {
	TCPSynSent     time.Duration // SYN seen (also SYN_SENT2)
	TCPSynRecv     time.Duration // SYN-ACK seen
	TCPEstablished time.Duration
	TCPFinWait     time.Duration
	TCPCloseWait   time.Duration
	TCPLastAck     time.Duration
	TCPTimeWait    time.Duration
	TCPClose       time.Duration // after a RST
	TCPPickup      time.Duration // loose-mode cap until both directions have been seen
	TCPUnacked     time.Duration // cap while sent data is unacknowledged (dead peer)
	UDPUnreplied   time.Duration
	UDPReplied     time.Duration
	ICMP           time.Duration
	OtherUnreplied time.Duration
	OtherReplied   time.Duration
}

// DefaultTimeouts returns the defaults below. Sources: Linux nf_conntrack sysctls
// (net.netfilter.nf_conntrack_*_timeout_*), pf's "normal" profile (pf.conf(5)),
// RFC 5382 (REQ-5: established idle timeout >= 2 h 4 min) and RFC 1122 4.2.3.6
// (keep-alive interval >= 2 h by default).
//
//	field           default  Linux   pf                  why this value
//	TCPSynSent      120 s    120 s   tcp.first 120       both agree
//	TCPSynRecv      60 s     60 s    tcp.opening 30      Linux: a SYN-ACK may wait for a slow client
//	TCPEstablished  24 h     5 d     tcp.established 24h pf's value: well above RFC 5382's 2 h 4 min
//	                                                     and a keep-alive's 2 h + 9 probes x 75 s
//	                                                     (2 h 11 min 15 s), the story of seed 2,
//	                                                     while a dead peer's state goes within a day
//	TCPFinWait      120 s    120 s   tcp.closing 900     Linux
//	TCPCloseWait    60 s     60 s    (tcp.closing)       Linux
//	TCPLastAck      30 s     30 s    (tcp.closing)       Linux
//	TCPTimeWait     120 s    120 s   tcp.closed 90       Linux: 2 x MSL of 60 s
//	TCPClose        10 s     10 s    (tcp.closed)        Linux: after RST only retransmissions follow
//	TCPPickup       300 s    300 s*  -                   *Linux's "unacknowledged" timeout; a
//	                                                     half-seen (asymmetric) flow stays while
//	                                                     it sends, and dies within 5 min after
//	TCPUnacked      300 s    300 s   -                   Linux "unacknowledged": data that is never
//	                                                     acked means the peer is gone; do not hold
//	                                                     its state for a day
//	UDPUnreplied    30 s     30 s    udp.first 60        Linux
//	UDPReplied      120 s    120 s   udp.multiple 60     Linux "stream" timeout: SIP/VPN keep-alives
//	                                                     are commonly 30-60 s apart
//	ICMP            30 s     30 s    icmp.first 20       Linux
//	OtherUnreplied  60 s     600 s   other.first 60      pf: an unanswered packet holds little
//	OtherReplied    600 s    600 s   other.multiple 60   Linux: GRE/ESP tunnels idle for minutes
func DefaultTimeouts() Timeouts {
	return Timeouts{
		TCPSynSent:     120 * time.Second,
		TCPSynRecv:     60 * time.Second,
		TCPEstablished: 24 * time.Hour,
		TCPFinWait:     120 * time.Second,
		TCPCloseWait:   60 * time.Second,
		TCPLastAck:     30 * time.Second,
		TCPTimeWait:    120 * time.Second,
		TCPClose:       10 * time.Second,
		TCPPickup:      300 * time.Second,
		TCPUnacked:     300 * time.Second,
		UDPUnreplied:   30 * time.Second,
		UDPReplied:     120 * time.Second,
		ICMP:           30 * time.Second,
		OtherUnreplied: 60 * time.Second,
		OtherReplied:   600 * time.Second,
	}
}

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
	// OnEnd is called when a connection leaves the table, never with a shard lock
	// held: it may call back into the Table. Calls for different shards may run
	// concurrently.
	OnEnd func(ConnInfo, EndCause)
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
	maxConns      int64 // 0: unlimited
	adaptiveStart int64
	adaptiveEnd   int64
	perSrcConns   int32
	perSrcRate    int32
	tombCap       int
	tombTTL       int64
	onEnd         func(ConnInfo, EndCause)
}

func orDefault(d, def time.Duration) int64 {
	if d <= 0 {
		return int64(def)
	}
	return int64(d)
}

func newSettings(c Config) *settings {
	def := DefaultTimeouts()
	t := c.Timeouts
	s := &settings{strict: c.Strict, onEnd: c.OnEnd}
	s.timeout[clsSynSent] = orDefault(t.TCPSynSent, def.TCPSynSent)
	s.timeout[clsSynRecv] = orDefault(t.TCPSynRecv, def.TCPSynRecv)
	s.timeout[clsEstablished] = orDefault(t.TCPEstablished, def.TCPEstablished)
	s.timeout[clsFinWait] = orDefault(t.TCPFinWait, def.TCPFinWait)
	s.timeout[clsCloseWait] = orDefault(t.TCPCloseWait, def.TCPCloseWait)
	s.timeout[clsLastAck] = orDefault(t.TCPLastAck, def.TCPLastAck)
	s.timeout[clsTimeWait] = orDefault(t.TCPTimeWait, def.TCPTimeWait)
	s.timeout[clsClose] = orDefault(t.TCPClose, def.TCPClose)
	// The pickup timeout is a cap on the established timeout, never an extension.
	s.timeout[clsPickup] = min(orDefault(t.TCPPickup, def.TCPPickup), s.timeout[clsEstablished])
	s.timeout[clsUnacked] = min(orDefault(t.TCPUnacked, def.TCPUnacked), s.timeout[clsEstablished])
	s.timeout[clsRefiled] = s.timeout[clsEstablished]
	s.timeout[clsUDPUnreplied] = orDefault(t.UDPUnreplied, def.UDPUnreplied)
	s.timeout[clsUDPReplied] = orDefault(t.UDPReplied, def.UDPReplied)
	s.timeout[clsICMPUnreplied] = orDefault(t.ICMP, def.ICMP)
	s.timeout[clsICMPReplied] = s.timeout[clsICMPUnreplied]
	s.timeout[clsOtherUnreplied] = orDefault(t.OtherUnreplied, def.OtherUnreplied)
	s.timeout[clsOtherReplied] = orDefault(t.OtherReplied, def.OtherReplied)
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
