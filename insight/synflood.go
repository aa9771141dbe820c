package insight

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/reason"
)

// A service is under a SYN flood when, within the last minute, at least
// synFloodMin connections to it ended half-open (or their SYNs were refused by a
// full table), from at least synFloodSources addresses, none of which sent half
// of them (one busy client retrying is not a flood).
const (
	synFloodMin     = 100
	synFloodSources = 20
	synFloodQuiet   = 2 * time.Minute
	maxFloodSources = 4096
	synRecvTimeout  = 10 // seconds, the advised TcpSynRecvTimeout under a flood
	synSentTimeout  = 30 // seconds, the advised TcpSynSentTimeout
)

// synFlood finds services flooded with connections that never complete their
// handshake. It learns of them when they leave the table half-open (their SYN
// timeout ran out, or a full table evicted them) and from SYNs a full table
// refused: without a connection-open event this is one SYN timeout (60 s in
// SYN_RECV, 120 s in SYN_SENT) after the flood began, or at once when the table
// fills up.
type synFlood struct {
	base
	groups map[string]*floodGroup
}

func newSYNFlood() *synFlood { return &synFlood{groups: map[string]*floodGroup{}} }

func (*synFlood) kind() Kind { return SYNFlood }

type floodGroup struct {
	tracked
	server           netip.AddrPort
	synSent, synRecv uint64
	refused          uint64
	sources          addrSet
	lastMinute       minute
}

func (f *synFlood) group(m *Monitor, server netip.AddrPort, t int64) (*floodGroup, string) {
	key := server.String()
	g := f.groups[key]
	if g != nil && g.rec == nil && t-g.last > int64(synFloodQuiet) {
		g = nil // an old trickle: start counting again
	}
	if g == nil {
		if !admit(m, f.groups) {
			return nil, ""
		}
		g = &floodGroup{server: server}
		f.groups[key] = g
	}
	return g, key
}

func (f *synFlood) end(m *Monitor, e *End) {
	ci := &e.Info
	if ci.Proto != packet.ProtoTCP || ci.Assured || (e.Cause != conntrack.EndExpired && e.Cause != conntrack.EndEvicted) {
		return
	}
	switch ci.State {
	case conntrack.StateSynSent, conntrack.StateSynSent2, conntrack.StateSynRecv:
	default:
		return
	}
	g, key := f.group(m, netip.AddrPortFrom(ci.Dst, ci.DstPort), e.At)
	if g == nil {
		return
	}
	if ci.State == conntrack.StateSynRecv {
		g.synRecv++
	} else {
		g.synSent++
	}
	g.sources.add(ci.Src, maxFloodSources)
	g.lastMinute.add(e.At, 1)
	g.addEnd(e)
	f.check(m, g, key, e.At)
}

func (f *synFlood) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.TableFull || !d.isTCP() || d.Flags&(packet.SYN|packet.ACK) != packet.SYN {
		return
	}
	g, key := f.group(m, netip.AddrPortFrom(d.Dst, d.DstPort), d.Time)
	if g == nil {
		return
	}
	g.refused++
	g.sources.add(d.Src, maxFloodSources)
	g.lastMinute.add(d.Time, 1)
	g.addDrop(d)
	f.check(m, g, key, d.Time)
}

func (f *synFlood) check(m *Monitor, g *floodGroup, key string, now int64) {
	if g.rec != nil {
		m.touched(g.rec)
		return
	}
	inMinute := g.lastMinute.total(now)
	top := uint64(0)
	for _, n := range g.sources.m {
		top = max(top, n)
	}
	if inMinute >= synFloodMin && len(g.sources.m) >= synFloodSources && top*2 < g.count {
		g.rec = m.raise(f, key, g, synFloodQuiet)
	}
}

func (f *synFlood) forget(key string) { delete(f.groups, key) }

func (g *floodGroup) describe(v *env) description {
	now := max(v.tableAt, g.last)
	half := g.synSent + g.synRecv
	perSec := float64(g.lastMinute.total(now)) / 60
	sources := count(len(g.sources.m))
	if g.sources.more {
		sources = "more than " + sources
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s is flooded with connections that never complete: %s half-open from %s sources since %s (%.0f a second over the last minute)",
		g.server, count(int(half)), sources, utc(g.first).Format(time.TimeOnly), perSec)
	if g.refused > 0 {
		fmt.Fprintf(&sb, ", and %s refused by the full table", plural(int(g.refused), "SYN"))
	}
	sb.WriteString(". ")
	recvFlood := g.synRecv >= g.synSent
	if recvFlood {
		fmt.Fprintf(&sb, "%s answered their SYNs and the clients never sent the final ACK: a SYN flood from spoofed sources.", g.server.Addr())
	} else {
		fmt.Fprintf(&sb, "Their SYNs got no answer from %s: a flood it cannot keep up with, or a server down or unreachable behind the firewall.", g.server.Addr())
	}

	bytes, _ := v.memory()
	saved := func(cur time.Duration, to int) string {
		n := perSec * (cur.Seconds() - float64(to))
		s := fmt.Sprintf("at the current rate about %s fewer half-open connections held", count(int(n+0.5)))
		if bytes > 0 {
			s += fmt.Sprintf(" (%s)", memSize(n*bytes/(1<<20)))
		}
		return s
	}
	var fixes []fixSpec
	if v.cfg != nil {
		t := v.cfg.Settings.Timeouts
		if recvFlood && t.TCPSynRecv > synRecvTimeout*time.Second {
			fixes = append(fixes, fixSpec{scope: scopeGlobal, title: fmt.Sprintf("TcpSynRecvTimeout=%d", synRecvTimeout),
				change: change{setting: "TcpSynRecvTimeout", value: fmt.Sprint(synRecvTimeout)},
				cost:   saved(t.TCPSynRecv, synRecvTimeout) + fmt.Sprintf("; a real client whose final ACK takes more than %d s after the SYN-ACK (several lost packets on a very slow link) has to retry", synRecvTimeout)})
		}
		if !recvFlood && t.TCPSynSent > synSentTimeout*time.Second {
			fixes = append(fixes, fixSpec{scope: scopeGlobal, title: fmt.Sprintf("TcpSynSentTimeout=%d", synSentTimeout),
				change: change{setting: "TcpSynSentTimeout", value: fmt.Sprint(synSentTimeout)},
				cost:   saved(t.TCPSynSent, synSentTimeout) + fmt.Sprintf("; a client still retrying its SYN after %d s (its fifth try) starts a new connection", synSentTimeout)})
		}
	}
	if recvFlood {
		fixes = append(fixes, fixSpec{scope: scopeOperation, title: "SYN cookies on the server",
			command: "sysctl -w net.ipv4.tcp_syncookies=1   # on " + g.server.Addr().String(),
			cost:    "none for the firewall: the server stops keeping state for unanswered SYN-ACKs"})
	}
	fixes = v.usableFixes(fixes)
	d := description{
		severity: Critical, countOf: "half-open connections and refused SYNs", summary: sb.String(), fixes: fixes,
		hosts: []Host{{Addr: g.server.String(), Role: "target", Note: plural(int(g.count), "half-open connection")}},
		figures: map[string]float64{
			"half_open":    float64(half),
			"syn_recv":     float64(g.synRecv),
			"syn_sent":     float64(g.synSent),
			"refused_syns": float64(g.refused),
			"sources":      float64(len(g.sources.m)),
			"per_s":        perSec,
			"server_port":  float64(g.server.Port()),
		},
	}
	top := sortedAddrs(g.sources.m)
	for _, a := range top[:min(3, len(top))] {
		d.hosts = append(d.hosts, Host{Addr: a.String(), Role: "source", Note: plural(int(g.sources.m[a]), "half-open connection")})
	}
	d.notes = append(d.notes, "A SYN flood is seen when its connections leave the table: one SYN timeout after it starts (TcpSynRecvTimeout, TcpSynSentTimeout), or at once when a full table evicts or refuses them.")
	if g.sources.more {
		d.notes = append(d.notes, fmt.Sprintf("Sources are counted up to %d.", maxFloodSources))
	}
	return d
}
