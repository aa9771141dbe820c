package conntrack

import (
	"net/netip"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// Verdict is the table's answer for one packet. The zero value is not a verdict, so a
// forgotten assignment can never read as Accept.
type Verdict uint8

const (
	// Accept: the packet belongs to a tracked connection (or is related to one).
	Accept Verdict = iota + 1
	// Drop: the packet must not pass; Result.Reason says why.
	Drop
	// NewConn: no tracked connection, and this packet may open one (a SYN in strict
	// mode; in loose mode also a mid-stream TCP packet; the first UDP or other
	// packet; an ICMP echo request or informational message). The engine evaluates
	// its rules and then calls Create, or drops. (The issue called it New; that
	// name is taken by the constructor.)
	NewConn
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case NewConn:
		return "new"
	}
	return "invalid"
}

// Dir is a packet's direction within its connection.
type Dir uint8

const (
	Original Dir = iota // the direction of the packet that opened the connection
	Reply               // the opposite direction
)

func (d Dir) String() string {
	if d == Original {
		return "original"
	}
	return "reply"
}

// State is a connection's state. TCP states are Linux's; UDP, ICMP and other
// protocols have an unreplied and a replied state.
type State uint8

const (
	StateNone State = iota
	StateSynSent
	StateSynRecv
	StateEstablished
	StateFinWait
	StateCloseWait
	StateLastAck
	StateTimeWait
	StateClose
	StateSynSent2 // simultaneous open: SYN seen from both sides
	StateUDPUnreplied
	StateUDPReplied
	StateICMPUnreplied
	StateICMPReplied
	StateOtherUnreplied
	StateOtherReplied
	numStates // fits in 4 bits; keep last
)

var stateNames = [numStates]string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
	"LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
	"UDP_UNREPLIED", "UDP_REPLIED", "ICMP_UNREPLIED", "ICMP_REPLIED",
	"OTHER_UNREPLIED", "OTHER_REPLIED",
}

// String returns the state's name as Linux's conntrack tool prints it, e.g.
// "ESTABLISHED"; UDP, ICMP and other states are named e.g. "UDP_REPLIED".
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "INVALID"
}

// IsTCP reports whether s is one of the TCP states.
func (s State) IsTCP() bool { return s <= StateSynSent2 }

// Meta is what the engine stores with a connection when it creates it: the rule
// that permitted it and the options that rule gives its connections. Values are
// interned per shard, so connections of one rule share one.
type Meta struct {
	Rule  uint32 // the rule that permitted the connection
	Flags uint8  // engine-defined, e.g. "log this connection"
	// Handshake is the rule's handshake mode; HandshakeInherit follows
	// Config.Strict.
	Handshake Handshake
	// MaxPerSource is the rule's own limit of connections from one source
	// address at once (counted per Rule, apart from Config.PerSourceConns); 0:
	// none.
	MaxPerSource int32
	// IdleTimeout is the established-TCP idle timeout of the rule's connections
	// (it also caps their unacknowledged-data timeout); 0: the table's.
	IdleTimeout time.Duration
}

// EndCause says why a connection left the table.
type EndCause uint8

const (
	EndExpired     EndCause = iota + 1 // idle longer than its timeout
	EndClosed                          // closed by FIN or RST and its TIME_WAIT/CLOSE time ran out
	EndEvicted                         // removed to make room when the table was full
	EndFlushed                         // removed by CloseIf (operator flush)
	EndRuleChanged                     // removed by CloseIf because the ruleset no longer permits it
	EndReopened                        // a new SYN reused the tuple of a closed connection
)

func (c EndCause) String() string {
	switch c {
	case EndExpired:
		return "expired"
	case EndClosed:
		return "closed"
	case EndEvicted:
		return "evicted"
	case EndFlushed:
		return "flushed"
	case EndRuleChanged:
		return "rule_changed"
	case EndReopened:
		return "reopened"
	}
	return "unknown"
}

// Result is the table's answer for one packet.
type Result struct {
	Verdict Verdict
	Reason  reason.Reason // set when Verdict == Drop
	Dir     Dir           // direction of this packet in its connection
	State   State         // connection state after this packet
	ID      uint64        // connection id, stable for the connection's life; 0 if none
	Meta    Meta          // what Create stored
	Limit   Limit         // for reason.ConnectionLimit: which per-source limit refused

	// StrictReason is set with NewConn for a TCP packet that is not a SYN (a
	// pickup): the reason a strict connection drops it with
	// (HandshakeNotCompleted, or StateExpired with the ended connection's details
	// below). The engine opens the connection only if the rule that permits it is
	// loose, and Create refuses it otherwise.
	StrictReason reason.Reason

	// For reason.StateExpired (and, as information, for a loose-mode pickup of a
	// connection that had timed out): how long the ended connection had been idle
	// when this packet came, the timeout that ended it (0 if it was closed, flushed
	// or evicted rather than timed out), its state then and when it ended. Meta is
	// then the ended connection's: whether its rule's IdleTimeout ended it.
	Idle, Timeout time.Duration
	EndedState    State
	EndedAt       int64
	endedClass    class // the class whose timeout ended it (see EndedTimeout)
}

// EndedTimeout is the row of the timeout that ended the connection a
// StateExpired result reports, nil if it did not time out. When
// r.Meta.IdleTimeout is set and the row is TcpEstablishedTimeout's (or
// TcpUnackedTimeout's, capped by it), the rule's IdleTimeout was in force instead.
func (r *Result) EndedTimeout() *TimeoutDef {
	if r.Timeout <= 0 {
		return nil
	}
	return classDef[r.endedClass]
}

// RuleTimeoutEnded reports whether the rule's IdleTimeout (r.Meta.IdleTimeout),
// not a table timeout, ended the connection a StateExpired result reports.
func (r *Result) RuleTimeoutEnded() bool {
	if r.Meta.IdleTimeout <= 0 || r.Timeout <= 0 {
		return false
	}
	switch r.endedClass {
	case clsEstablished, clsRefiled:
		return true
	case clsUnacked:
		return r.Timeout == r.Meta.IdleTimeout
	}
	return false
}

// ConnInfo describes one connection, for Range, OnEnd and CloseIf.
type ConnInfo struct {
	ID       uint64
	Src, Dst netip.Addr // of the original direction
	SrcPort  uint16     // TCP/UDP ports; the echo identifier (both) for ICMP echo
	DstPort  uint16
	Proto    packet.Proto
	State    State
	Created  int64         // Unix ns, second precision
	LastSeen int64         // Unix ns
	Timeout  time.Duration // current idle timeout, adaptive scaling included
	Assured  bool          // handshake completed / reply seen
	Packets  [2]uint64     // original, reply
	Bytes    [2]uint64     // IP bytes, original, reply
	Meta     Meta
}

// Stats are the table's event counters, all cumulative except Conns and Tombstones.
type Stats struct {
	Conns         int    // connections in the table now
	Tombstones    int    // tombstones held now
	Created       uint64 // connections created
	Expired       uint64 // ended by idle timeout
	Closed        uint64 // ended after FIN/RST (TIME_WAIT or CLOSE timed out)
	Evicted       uint64 // evicted to make room
	Flushed       uint64 // removed by CloseIf
	Reopened      uint64 // replaced by a new SYN in TIME_WAIT/CLOSE
	TombstoneHits uint64 // packets answered StateExpired (or picked up) from a tombstone
	TableFull     uint64 // Create refused with TableFull
	ConnLimit     uint64 // Create refused with ConnectionLimit
	FragHits      uint64 // later fragments that followed their first fragment
	FragMisses    uint64 // later fragments dropped as unmatched
	MetaOverflow  uint64 // Creates whose Meta could not be interned (stored as Meta{})
	// ProfileOverflow counts Metas whose IdleTimeout found no free timeout
	// profile in their shard and so got the table's established timeout.
	ProfileOverflow uint64
	RSTInexact      uint64 // in-window RSTs that passed without closing: not the sender's exact next sequence (RFC 5961)
}
