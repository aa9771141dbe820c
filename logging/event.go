package logging

import (
	"net/netip"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// PacketEvent is one packet the engine decided about, as the debug ({pktdrop}) and
// filter logs need it. The engine fills it; logging only reads it and keeps no
// reference after the call returns.
type PacketEvent struct {
	Time     time.Time
	Iface    string         // interface name, e.g. "DMZ"
	Outbound bool           // false: ingress, written "from DMZ"; true: egress, written "to LAN"
	P        *packet.Parsed // decoded packet; nil is tolerated (the line says less)
	Reason   reason.Reason  // None for permitted packets
	Rule     string         // rule name: TrafficRule drops and filter lines
	Action   string         // "PERMIT", "DENY" or "DROP" for filter lines

	// StateExpired details: how long the connection had been idle and the timeout
	// that ended it, e.g. 7200 s against TcpEstablishedTimeout 3600 s.
	Idle, Timeout time.Duration
	TimeoutName   string

	ConnState string // tracked TCP state when relevant, e.g. "ESTABLISHED"
}

// ConnEvent is a logged connection that ended, for the connection log.
type ConnEvent struct {
	ID         uint64
	Rule       string
	Service    string
	Proto      string // "TCP", "UDP", "ICMP", ...
	Src, Dst   netip.AddrPort
	Start, End time.Time
	Bytes      [2]uint64 // [0] originator to responder, [1] back
	Packets    [2]uint64
	Cause      string // "expired", "closed", "reset", "rule_changed", "flushed", ...
}

// WarningEvent is one line of the warning log. Message is the whole human text;
// Kind, Addr and Limit are repeated as fields in the JSON line when set.
type WarningEvent struct {
	Time    time.Time
	Kind    string // stable identifier, e.g. "conn_limit_per_minute"
	Message string
	Addr    netip.Addr
	Limit   int
}

// LimitKind names which per-host connection limit was reached.
type LimitKind uint8

const (
	LimitConcurrent LimitKind = iota // concurrent connections from one source
	LimitPerMinute                   // new connections per minute from one source
	LimitInbound                     // concurrent inbound connections to one destination
)

// ConnLimitWarning builds the warning Kerio Control writes when a connection limit
// is reached, e.g. "Connection limit per minute for source address '192.168.5.139'
// reached (limit: 600)".
func ConnLimitWarning(t time.Time, kind LimitKind, addr netip.Addr, limit int) WarningEvent {
	var id, head string
	switch kind {
	case LimitPerMinute:
		id, head = "conn_limit_per_minute", "Connection limit per minute for source address '"
	case LimitInbound:
		id, head = "conn_limit_inbound", "Inbound connection limit for destination address '"
	default:
		id, head = "conn_limit_concurrent", "Connection limit for source address '"
	}
	b := make([]byte, 0, 96)
	b = append(b, head...)
	b = appendAddr(b, addr)
	b = append(b, "' reached (limit: "...)
	b = appendInt(b, int64(limit))
	b = append(b, ')')
	return WarningEvent{Time: t, Kind: id, Message: string(b), Addr: addr, Limit: limit}
}
