// Package dataplane holds what every feeder of the engine shares: turning the
// engine's decisions into log lines, drop captures and counters. Feeders (replay in
// dataplane/replay, the live NFQUEUE path in dataplane/nfqueue) read packets, call
// firewall.Engine and hand each Decision to a Reporter; none of them decides anything.
package dataplane

import (
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"keepstate/capture"
	"keepstate/conntrack"
	"keepstate/firewall"
	"keepstate/logging"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

// Reporter writes what the engine decided: debug lines for drops, filter lines for
// rules that log packets, connection lines when logged connections end, warnings for
// connection limits, and the dropped packets themselves to a pcapng file. It is safe
// for concurrent use.
type Reporter struct {
	Engine *firewall.Engine
	Log    *logging.Logger // nil: no logs
	Drops  *DropWriter     // nil: no drop capture
	// Watch, when set, sees every packet the engine does not pass and every
	// connection that ends (the insight detectors' feed). It must not block.
	Watch Watcher
	Feed  *DropFeed // nil: no live feed of drops

	warnMu   sync.Mutex
	warnedAt map[netip.Addr]int64 // last connection-limit warning per source
}

// warnEvery bounds connection-limit warnings to one per source per minute: a host
// hammering the limit must not flood the warning log.
const warnEvery = int64(time.Minute)

// maxWarned bounds the memory of warned sources.
const maxWarned = 4096

// Packet reports one decided packet. frame and link are the bytes the engine
// decoded; t is the packet's time (capture time in replay).
func (r *Reporter) Packet(t int64, frame []byte, link packet.LinkType, p *packet.Parsed, d *firewall.Decision) {
	if d.Action == firewall.Accept {
		if d.LogPackets && r.Log != nil {
			ev := r.event(t, p, d)
			ev.Action = "PERMIT"
			r.Log.Filter(&ev)
		}
		if d.Recovered {
			r.recoveredWarning(t, p, d)
		}
		return
	}
	if r.Watch != nil {
		r.Watch.Dropped(t, p, d)
	}
	if d.Reason == reason.ConnectionLimit {
		r.limitWarning(t, p, d)
	}
	wantLog := r.Log.WantDrop(d.Reason)
	wantFilter := d.LogPackets && r.Log != nil && (d.Reason == reason.TrafficRule || d.Reason == reason.DefaultRule)
	if !wantLog && !wantFilter && r.Drops == nil && r.Feed == nil {
		return
	}
	ev := r.event(t, p, d)
	if wantFilter {
		ev.Action = "DROP"
		if d.Action == firewall.Reject {
			ev.Action = "DENY"
		}
		r.Log.Filter(&ev)
	}
	if wantLog {
		r.Log.Drop(&ev)
	}
	if r.Drops != nil {
		r.Drops.Write(t, frame, link, ev.Iface, &ev)
	}
	if r.Feed != nil {
		r.Feed.add(t, frame, link, &ev)
	}
}

// Watcher sees what the engine refused and the connections that ended, as they
// happen, on the packet paths: it must return at once.
type Watcher interface {
	Dropped(t int64, p *packet.Parsed, d *firewall.Decision)
	ConnEnded(end firewall.ConnEnd)
}

// event builds the log event of a decided packet.
func (r *Reporter) event(t int64, p *packet.Parsed, d *firewall.Decision) logging.PacketEvent {
	rs := r.Engine.Ruleset()
	ev := logging.PacketEvent{
		Time:   time.Unix(0, t),
		Iface:  ifaceName(rs, d.InIface),
		Reason: d.Reason,
	}
	if p.IPVersion != 0 {
		ev.P = p
	}
	if d.Rule >= 0 {
		ev.Rule = rs.Rule(d.Rule).Name
	} else if d.Rule == firewall.DefaultRule {
		ev.Rule = "Default rule"
	}
	if d.Conn.ID != 0 && d.Conn.State != conntrack.StateNone {
		ev.ConnState = d.Conn.State.String()
	}
	if d.Reason == reason.StateExpired {
		ev.Idle, ev.Timeout = d.Conn.Idle, d.Conn.Timeout
		ev.TimeoutName = firewall.TimeoutWords(rs, &d.Conn)
		ev.ConnState = d.Conn.EndedState.String()
	}
	return ev
}

func ifaceName(rs *policy.Ruleset, i int) string {
	ifs := rs.Interfaces()
	if i < 0 || i >= len(ifs) {
		return "unknown"
	}
	return ifs[i].Name
}

func (r *Reporter) limitWarning(t int64, p *packet.Parsed, d *firewall.Decision) {
	which := d.Conn.Limit
	if r.Log == nil {
		return
	}
	r.warnMu.Lock()
	if r.warnedAt == nil {
		r.warnedAt = make(map[netip.Addr]int64)
	}
	last, seen := r.warnedAt[p.Src]
	if seen && t-last < warnEvery {
		r.warnMu.Unlock()
		return
	}
	if len(r.warnedAt) >= maxWarned {
		clear(r.warnedAt)
	}
	r.warnedAt[p.Src] = t
	r.warnMu.Unlock()

	tc := r.Engine.Settings().Conntrack
	kind, limit := logging.LimitConcurrent, tc.PerSourceConns
	if which == conntrack.LimitPerMinute {
		kind, limit = logging.LimitPerMinute, tc.PerSourceRate
	}
	ev := logging.ConnLimitWarning(time.Unix(0, t), kind, p.Src, limit)
	if rs := r.Engine.Ruleset(); which == conntrack.LimitRule && d.Rule >= 0 && d.Rule < rs.NumRules() {
		// The admitting rule's own limit (MaxConnectionsPerSource).
		rule := rs.Rule(d.Rule)
		ev.Kind = "conn_limit_rule"
		ev.Limit = rule.MaxConnectionsPerSource
		ev.Message = fmt.Sprintf("Connection limit of rule '%s' for source address '%s' reached (limit: %d)", rule.Name, p.Src, rule.MaxConnectionsPerSource)
	}
	r.Log.Warning(&ev)
}

// recoveredWarning writes the warning line of a connection picked up mid-stream
// in strict mode after an unclean start: every one is a packet admitted without
// the handshake strict mode asks for, so each is on record.
func (r *Reporter) recoveredWarning(t int64, p *packet.Parsed, d *firewall.Decision) {
	if r.Log == nil {
		return
	}
	src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	if d.Reversed {
		src, dst = dst, src
	}
	rule := "Default rule"
	if d.Rule >= 0 {
		rule = r.Engine.Ruleset().Rule(d.Rule).Name
	}
	w := logging.WarningEvent{
		Time: time.Unix(0, t), Kind: "conn_recovered", Addr: src.Addr(),
		Message: fmt.Sprintf("Connection TCP %s > %s picked up mid-stream after an unclean start (RecoverAfterCrashSeconds), permitted by rule '%s'", src, dst, rule),
	}
	r.Log.Warning(&w)
}

// ConnEnd is the engine's OnConnEnd hook: it writes the connection line of a
// connection whose rule logs connections, and of every connection a configuration
// change closed, with a warning line saying why: an administrator must be able to
// see what a rule change cut.
func (r *Reporter) ConnEnd(end firewall.ConnEnd) {
	if r.Watch != nil {
		r.Watch.ConnEnded(end)
	}
	if r.Log == nil {
		return
	}
	ruleChanged := end.Cause == conntrack.EndRuleChanged
	if !end.Log && !ruleChanged {
		return
	}
	ci := &end.Info
	ev := logging.ConnEvent{
		ID:      ci.ID,
		Proto:   ci.Proto.String(),
		Src:     netip.AddrPortFrom(ci.Src, ci.SrcPort),
		Dst:     netip.AddrPortFrom(ci.Dst, ci.DstPort),
		Start:   time.Unix(0, ci.Created),
		End:     time.Unix(0, endedAt(&end)),
		Bytes:   ci.Bytes,
		Packets: ci.Packets,
		Cause:   end.Cause.String(),
	}
	if end.Rule != nil {
		ev.Rule = end.Rule.Name
		if len(end.Rule.Services) == 1 {
			ev.Service = end.Rule.Services[0]
		}
	}
	r.Log.Connection(&ev)
	if ruleChanged {
		w := logging.WarningEvent{
			Time: ev.End, Kind: "conn_closed_rule_change", Addr: ci.Src,
			Message: fmt.Sprintf("Connection %s %s > %s closed: the new traffic rules no longer permit it", ev.Proto, ev.Src, ev.Dst),
		}
		r.Log.Warning(&w)
	}
}

// endedAt is when a connection left the table: a connection that timed out (idle,
// or in TIME_WAIT/CLOSE) was forgotten when its timeout ran out after its last
// packet, not at that packet. Other ends happen at the last packet or close to it.
func endedAt(end *firewall.ConnEnd) int64 {
	switch end.Cause {
	case conntrack.EndExpired, conntrack.EndClosed:
		return end.Info.LastSeen + int64(end.Info.Timeout)
	}
	return end.Info.LastSeen
}

// DropWriter writes dropped packets to a pcapng file, each with its reason and debug
// line as the packet comment, one pcapng interface per (link type, firewall
// interface) pair seen. It is safe for concurrent use.
type DropWriter struct {
	mu     sync.Mutex
	w      *capture.NgWriter
	ifaces map[dropIface]int
	line   []byte
	err    error
}

type dropIface struct {
	link packet.LinkType
	name string
}

// NewDropWriter starts a pcapng capture of dropped packets on w; the caller closes
// w after Close. The capture's interfaces are added as drops arrive, one per (link
// type, firewall interface); the pcapng writer wants one to begin with, so the file
// opens with a "keepstate" interface that names it and holds no packet.
func NewDropWriter(w io.Writer) (*DropWriter, error) {
	nw, err := capture.NewNgWriter(w, []capture.Interface{{Name: "keepstate", Description: "dropped packets", Link: packet.LinkRaw}})
	if err != nil {
		return nil, err
	}
	return &DropWriter{w: nw, ifaces: make(map[dropIface]int)}, nil
}

// Write appends one dropped packet.
func (dw *DropWriter) Write(t int64, frame []byte, link packet.LinkType, iface string, ev *logging.PacketEvent) {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.err != nil {
		return
	}
	key := dropIface{link, iface}
	idx, ok := dw.ifaces[key]
	if !ok {
		idx, dw.err = dw.w.AddInterface(capture.Interface{Name: iface, Description: "keepstate drops", Link: link})
		if dw.err != nil {
			return
		}
		dw.ifaces[key] = idx
	}
	dw.line = append(dw.line[:0], ev.Reason.String()...)
	dw.line = append(dw.line, ": "...)
	dw.line = logging.AppendDrop(dw.line, time.UTC, ev)
	if n := len(dw.line); n > 0 && dw.line[n-1] == '\n' {
		dw.line = dw.line[:n-1]
	}
	dw.err = dw.w.WritePacket(idx, t, frame, len(frame), string(dw.line))
}

// Flush writes buffered packets to the file, so that a capture being read while the
// daemon runs is at most one flush interval behind.
func (dw *DropWriter) Flush() error {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.err != nil {
		return dw.err
	}
	return dw.w.Flush()
}

// Close flushes the capture and returns the first error met while writing.
func (dw *DropWriter) Close() error {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if err := dw.w.Close(); dw.err == nil {
		dw.err = err
	}
	return dw.err
}
