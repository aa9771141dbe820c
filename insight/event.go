package insight

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/diagnose"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// Drop is one dropped packet as the detectors see it: the packet's headers and the
// engine's answer, copied out of the decision so that nothing points into a packet
// buffer. It is a plain value; building one does not allocate.
type Drop struct {
	Time             int64 // Unix ns
	Reason           reason.Reason
	Proto            packet.Proto
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Flags            packet.TCPFlags
	Seq, Ack         uint32
	PayloadLen       int
	ICMPType         uint8
	ICMPID, ICMPSeq  uint16
	InIface          int // index into the ruleset's interfaces; -1 unknown
	OutIface         int
	Rule             int // the deciding rule (firewall's numbering), firewall.NoRule or DefaultRule
	// ConnRule is the rule identity stored with the packet's connection: its
	// configuration id, or its position + 1 for a rule without one; 0 none.
	ConnRule uint32

	ConnID uint64          // the connection (or tombstone) the packet was matched to; 0 none
	State  conntrack.State // the connection's state after the packet
	Dir    conntrack.Dir   // the packet's direction in that connection
	Limit  conntrack.Limit // for reason.ConnectionLimit
	// For reason.StateExpired: how long the ended connection had been idle, the
	// timeout that ended it (0: closed, flushed or evicted) and its state then.
	Idle, Timeout time.Duration
	EndedState    conntrack.State

	// Capture and Packet place the packet in a capture, for replay: the file and
	// the packet's number in it, from 1 as Wireshark counts. Empty and 0 live.
	Capture string
	Packet  int64
}

// DropOf copies what the detectors need out of a dropped packet and its decision.
func DropOf(t int64, p *packet.Parsed, d *firewall.Decision) Drop {
	return Drop{
		Time: t, Reason: d.Reason, Proto: p.Proto,
		Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort,
		Flags: p.TCPFlags, Seq: p.Seq, Ack: p.Ack, PayloadLen: p.PayloadLen,
		ICMPType: p.ICMPType, ICMPID: p.ICMPID, ICMPSeq: p.ICMPSeq,
		InIface: d.InIface, OutIface: d.OutIface, Rule: d.Rule, ConnRule: d.Conn.Meta.Rule,
		ConnID: d.Conn.ID, State: d.Conn.State, Dir: d.Conn.Dir, Limit: d.Conn.Limit,
		Idle: d.Conn.Idle, Timeout: d.Conn.Timeout, EndedState: d.Conn.EndedState,
	}
}

// isTCP reports whether the drop is a TCP packet with its ports.
func (d *Drop) isTCP() bool { return d.Proto == packet.ProtoTCP && d.IPv() != 0 }

// IPv returns 4 or 6, or 0 when the packet had no IP layer.
func (d *Drop) IPv() int {
	switch {
	case d.Src.Is4():
		return 4
	case d.Src.Is6():
		return 6
	}
	return 0
}

// End is a connection that left the table.
type End struct {
	Info  conntrack.ConnInfo
	Cause conntrack.EndCause
	// At is when it ended, as far as known: its last packet plus its timeout
	// when it timed out; for other causes the monitor takes the latest time it
	// has seen (the end is that recent).
	At   int64
	Rule string // the name of the rule that admitted it, when it still exists
	// RuleID is the configuration's id of that rule (0: none or the default).
	RuleID int
}

// EndOf copies a firewall connection end.
func EndOf(e firewall.ConnEnd) End {
	out := End{Info: e.Info, Cause: e.Cause, At: e.Info.LastSeen}
	if e.Cause == conntrack.EndExpired || e.Cause == conntrack.EndClosed {
		out.At += int64(e.Info.Timeout)
	}
	if e.Rule != nil {
		out.Rule, out.RuleID = e.Rule.Name, e.Rule.ID
	}
	return out
}

// Table is the connection table's state at a tick: its size, its limits and its
// cumulative counters (the monitor takes differences between ticks).
type Table struct {
	Conns         int
	MaxConns      int // 0 unlimited
	AdaptiveStart int // connections at which timeouts start to shrink; 0 never
	AdaptiveEnd   int // connections at which they reach zero
	Created       uint64
	Evicted       uint64
	TableFull     uint64 // new connections refused: full and nothing evictable
}

// TableOf reads the state of an engine's connection table and the limits its
// settings set.
func TableOf(e *firewall.Engine) Table {
	st := e.Table().Stats()
	c := e.Settings().Conntrack
	limit := c.MaxConns
	switch {
	case limit == 0:
		limit = conntrack.DefaultMaxConns
	case limit < 0:
		limit = 0 // no limit
	}
	return Table{Conns: st.Conns, MaxConns: limit, AdaptiveStart: c.AdaptiveStart, AdaptiveEnd: c.AdaptiveEnd,
		Created: st.Created, Evicted: st.Evicted, TableFull: st.TableFull}
}

// spec writes a dropped packet in the words `keepstate explain` reads.
func (d *Drop) spec(iface string) string {
	sp := diagnose.Spec{
		Proto: d.Proto, Src: netip.AddrPortFrom(d.Src, d.SrcPort), Dst: netip.AddrPortFrom(d.Dst, d.DstPort),
		Flags: d.Flags, Seq: d.Seq, Ack: d.Ack, PayloadLen: d.PayloadLen,
		ICMPType: d.ICMPType, ICMPID: d.ICMPID, ICMPSeq: d.ICMPSeq,
	}
	if d.Proto != packet.ProtoTCP && d.Proto != packet.ProtoUDP {
		sp.Src, sp.Dst = netip.AddrPortFrom(d.Src, 0), netip.AddrPortFrom(d.Dst, 0)
	}
	if iface != "unknown" {
		sp.Iface = iface
	}
	return sp.String()
}

// tuple writes a connection in the orientation it was opened in.
func tupleString(proto packet.Proto, client, server netip.AddrPort) string {
	return fmt.Sprintf("%s %s > %s", strings.ToLower(proto.String()), client, server)
}
