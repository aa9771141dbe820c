package insight

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/diagnose"
	"keepstate/packet"
	"keepstate/reason"
)

// keepAliveMargin is added to the longest idle gap before rounding the advised
// timeout up to whole 5 minutes, as `keepstate advise` does.
const keepAliveMargin = 0.1

// Quiet time of a keep-alive insight: two of the keep-alive intervals it found
// (its evidence comes once an interval), at least keepAliveMinQuiet.
const (
	keepAliveMinQuiet = 10 * time.Minute
	keepAliveMaxQuiet = 25 * time.Hour
)

// keepAlive finds connections an idle timeout ended while their hosts still held
// them: packets dropped as state_expired whose connection timed out while
// established. Those that are keep-alive probes (a bare ACK with at most one byte,
// RFC 1122 4.2.3.6) or their answers name the keep-alive interval; the others are
// an application using a connection after a long silence. Grouped by service: the
// rule that permits the connections and the server port.
//
// It also counts, from the connections that leave the table, how many established
// connections expire per second, per rule and in all: what a longer timeout would
// keep in the table, hence its cost in memory.
type keepAlive struct {
	base
	groups  map[string]*kaGroup
	expired rate          // established connections ended by their idle timeout
	perRule map[int]*rate // the same, by the id of the rule that admitted them (at most maxGroups rules)
}

func newKeepAlive() *keepAlive {
	return &keepAlive{groups: map[string]*kaGroup{}, perRule: map[int]*rate{}}
}

func (*keepAlive) kind() Kind { return KeepAliveOutlivesTimeout }

type kaGroup struct {
	tracked
	rule    ruleRef
	proto   packet.Proto
	port    uint16
	servers addrSet
	conns   connSet[kaConn]
	probes  uint64
	other   uint64
	timeout time.Duration // the timeout that ended them (the latest seen)
	det     *keepAlive
	atNow   int64
}

type kaConn struct {
	firstIdle time.Duration // idle time at the connection's first dropped packet
	probe     bool          // that packet was a keep-alive probe or answer
}

// isKeepAlive reports whether a TCP packet looks like a keep-alive probe or its
// answer: ACK only, no more than one byte.
func isKeepAlive(d *Drop) bool {
	return d.Flags&(packet.SYN|packet.FIN|packet.RST) == 0 && d.Flags&packet.ACK != 0 && d.PayloadLen <= 1
}

func (k *keepAlive) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.StateExpired || !d.isTCP() || d.Timeout <= 0 || d.EndedState != conntrack.StateEstablished {
		return
	}
	ck := connKey{proto: d.Proto, client: netip.AddrPortFrom(d.Src, d.SrcPort), server: netip.AddrPortFrom(d.Dst, d.DstPort)}
	q := d.query()
	if d.Dir == conntrack.Reply {
		ck.client, ck.server = ck.server, ck.client
		q = q.Reverse()
	}
	rule := ruleRef{index: -1}
	if m.env.rules != nil {
		if i, _ := m.env.rules.Match(&q); i >= 0 {
			rule = m.env.ruleAt(i)
		}
	}
	key := fmt.Sprintf("%d|%d|%d", rule.index, d.Proto, ck.server.Port())
	if rule.index < 0 {
		key = fmt.Sprintf("-|%s", ck.server)
	}
	g := k.groups[key]
	if g == nil {
		if !admit(m, k.groups) {
			return
		}
		g = &kaGroup{rule: rule, proto: d.Proto, port: ck.server.Port(), det: k}
		k.groups[key] = g
	}
	g.addDrop(d)
	g.timeout = d.Timeout
	g.servers.add(ck.server.Addr(), 16)
	probe := isKeepAlive(d)
	if probe {
		g.probes++
	} else {
		g.other++
	}
	if c, added := g.conns.get(ck); added {
		c.firstIdle, c.probe = d.Idle, probe
	}
	quiet := g.quiet()
	if g.rec == nil {
		g.rec = m.raise(k, key, g, quiet)
		return
	}
	g.rec.quiet = quiet
	m.touched(g.rec)
}

func (k *keepAlive) end(_ *Monitor, e *End) {
	if e.Cause != conntrack.EndExpired || e.Info.State != conntrack.StateEstablished {
		return
	}
	k.expired.add(e.At, 1)
	if e.RuleID == 0 {
		return
	}
	r := k.perRule[e.RuleID]
	if r == nil {
		if len(k.perRule) >= maxGroups {
			return
		}
		r = &rate{}
		k.perRule[e.RuleID] = r
	}
	r.add(e.At, 1)
}

func (k *keepAlive) tick(_ *Monitor, now int64) {
	for _, g := range k.groups {
		g.atNow = now
	}
}

func (k *keepAlive) forget(key string) { delete(k.groups, key) }

// interval is the keep-alive interval found: the median over connections of the
// idle time before their first dropped probe (later probes of a forgotten
// connection are counted from its last packet too, so they would count twice).
// longest is the longest such idle time over every connection, probes or not.
func (g *kaGroup) interval() (interval, longest time.Duration) {
	var probes []time.Duration
	for _, c := range g.conns.m {
		longest = max(longest, c.firstIdle)
		if c.probe {
			probes = append(probes, c.firstIdle)
		}
	}
	if len(probes) == 0 {
		return 0, longest
	}
	slices.Sort(probes)
	return probes[len(probes)/2], longest
}

func (g *kaGroup) quiet() time.Duration {
	iv, longest := g.interval()
	if iv == 0 {
		iv = longest
	}
	return min(max(2*iv, keepAliveMinQuiet), keepAliveMaxQuiet)
}

// advice is the timeout that keeps the group's connections: what they need, with
// the margin, and no less than RFC 5382's minimum.
func (g *kaGroup) advice() (needed, advised time.Duration) {
	iv, longest := g.interval()
	gap := longest
	if iv > 0 {
		gap = iv
	}
	needed = diagnose.NeededTimeout(gap)
	advised = max(diagnose.AdvisedTimeout(needed, keepAliveMargin), diagnose.RFC5382MinIdle)
	return needed, advised
}

// memCost is what keeping connections idle for longer costs: every connection
// that now expires stays up to extra longer, so at the current rate of expiries
// rate*extra more connections are held, and at least the ones the insight counted.
type memCost struct {
	conns float64
	mib   float64
	known bool // bytes per connection known
}

func (v *env) memCost(conns int, perSecond float64, extra time.Duration) memCost {
	n := max(float64(conns), perSecond*extra.Seconds())
	c := memCost{conns: n}
	if b, _ := v.memory(); b > 0 {
		c.mib, c.known = n*b/(1<<20), true
	}
	return c
}

func (c memCost) String() string {
	s := fmt.Sprintf("+%s connections", count(int(c.conns+0.5)))
	if c.known {
		s += ", " + memSize(c.mib)
	}
	return s
}

// memSize writes an amount of memory given in MiB: "360 bytes", "12.5 KiB", "3.2 MiB".
func memSize(mib float64) string {
	b := mib * (1 << 20)
	switch {
	case b < 1024:
		return fmt.Sprintf("%.0f bytes", b)
	case b < 1<<20:
		return fmt.Sprintf("%.1f KiB", b/1024)
	case mib < 100:
		return fmt.Sprintf("%.1f MiB", mib)
	}
	return fmt.Sprintf("%.0f MiB", mib)
}

func (g *kaGroup) describe(v *env) description {
	iv, longest := g.interval()
	needed, advised := g.advice()
	now := max(g.atNow, g.last)
	conns := g.conns.len()
	timeoutName := conntrack.TimeoutName(conntrack.StateEstablished, true)
	configured := time.Duration(0)
	if v.cfg != nil {
		configured = v.cfg.Settings.Timeouts.TCPEstablished
	}
	where := g.serviceWords()
	if g.rule.index >= 0 {
		where += fmt.Sprintf(" (rule '%s')", g.rule.name)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Connections to %s were forgotten after %s idle (the %d s timeout) while their hosts still held them: ",
		where, fmtDuration(g.timeout), int64(g.timeout/time.Second))
	switch {
	case g.probes > 0 && iv > 0:
		fmt.Fprintf(&sb, "their TCP keep-alives come every %s and %s of them (probes and answers) were dropped as state expired", fmtDuration(iv), count(int(g.probes)))
		if g.other > 0 {
			fmt.Fprintf(&sb, ", with %s later", plural(int(g.other), "other packet"))
		}
		sb.WriteString(". ")
	default:
		fmt.Fprintf(&sb, "no TCP keep-alive was seen, and %s came after up to %s of silence and were dropped as state expired. ",
			plural(int(g.count), "packet"), fmtDuration(longest))
	}
	fmt.Fprintf(&sb, "The smallest timeout that keeps them is %d s; with a %.0f %% margin %d s (%s)",
		int64(needed/time.Second), keepAliveMargin*100, int64(advised/time.Second), fmtDuration(advised))
	if advised == diagnose.RFC5382MinIdle {
		fmt.Fprintf(&sb, ", RFC 5382's minimum")
	} else {
		fmt.Fprintf(&sb, ", above RFC 5382's minimum of %d s", int64(diagnose.RFC5382MinIdle/time.Second))
	}
	sb.WriteString(".")

	ruleRate, allRate := 0.0, g.det.expired.perSecond(now)
	if r := g.det.perRule[g.rule.id]; r != nil && g.rule.id != 0 {
		ruleRate = r.perSecond(now)
	}
	ruleCost := v.memCost(conns, ruleRate, advised-g.timeout)
	globalCost := v.memCost(conns, allRate, advised-configured)
	var fixes []fixSpec
	if advised > g.timeout && g.rule.index >= 0 {
		fixes = append(fixes, fixSpec{
			scope: scopeRule, title: fmt.Sprintf("IdleTimeout=%d on rule '%s' only", int64(advised/time.Second), g.rule.name),
			change: change{ruleID: g.rule.id, option: "IdleTimeout", value: fmt.Sprint(int64(advised / time.Second))},
			cost: fmt.Sprintf("%s: connections of rule '%s' whose hosts vanished stay %s instead of %s (%s of that rule's connections expired idle over the last hour)",
				ruleCost, g.rule.name, fmtDuration(advised), fmtDuration(g.timeout), perHour(ruleRate)),
		})
	}
	if advised > configured {
		fixes = append(fixes, fixSpec{
			scope: scopeGlobal, title: fmt.Sprintf("%s=%d", timeoutName, int64(advised/time.Second)),
			change: change{setting: timeoutName, value: fmt.Sprint(int64(advised / time.Second))},
			cost: fmt.Sprintf("at most %s: every established connection whose hosts vanished stays %s instead of %s (%s expired idle over the last hour)",
				globalCost, fmtDuration(advised), fmtDuration(configured), perHour(allRate)),
		})
	}
	fixes = v.usableFixes(fixes)
	if len(fixes) > 0 {
		fmt.Fprintf(&sb, " Fix: %s (%s)", fixes[0].title, costShort(fixes[0], ruleCost, globalCost))
		if len(fixes) > 1 {
			fmt.Fprintf(&sb, ", or %s for every connection (%s)", fixes[1].title, costShort(fixes[1], ruleCost, globalCost))
		}
		sb.WriteString(".")
	}
	if g.timeout < configured {
		fmt.Fprintf(&sb, " The timeout was cut from %s by adaptive timeouts: the table is filling up.", fmtDuration(configured))
	}

	d := description{
		severity: Warning, countOf: "dropped packets", summary: sb.String(),
		conns: conns, connsAtLeast: g.conns.more, connList: g.conns.list(5), fixes: fixes,
		hosts: []Host{{Addr: g.serviceWords(), Role: "service"}},
		figures: map[string]float64{
			"connections":              float64(conns),
			"dropped_packets":          float64(g.count),
			"keepalive_packets":        float64(g.probes),
			"keepalive_interval_s":     iv.Seconds(),
			"longest_idle_s":           longest.Seconds(),
			"timeout_s":                g.timeout.Seconds(),
			"configured_timeout_s":     configured.Seconds(),
			"needed_timeout_s":         needed.Seconds(),
			"advised_timeout_s":        advised.Seconds(),
			"rfc5382_min_s":            diagnose.RFC5382MinIdle.Seconds(),
			"extra_connections_rule":   ruleCost.conns,
			"extra_connections_global": globalCost.conns,
			"table_connections":        float64(v.table.Conns),
		},
	}
	if len(g.servers.m) > 1 {
		d.hosts[0].Note = hostList(g.servers, 5)
	}
	if b, src := v.memory(); b > 0 {
		d.figures["bytes_per_connection"] = b
		d.figures["extra_mib_rule"] = ruleCost.mib
		d.figures["extra_mib_global"] = globalCost.mib
		d.figures["table_mib"] = float64(v.table.Conns) * b / (1 << 20)
		d.notes = append(d.notes, fmt.Sprintf("The table holds %s now, %s at %.0f bytes each (%s).",
			plural(v.table.Conns, "connection"), memSize(float64(v.table.Conns)*b/(1<<20)), b, src))
	}
	if iv > 0 {
		d.notes = append(d.notes, fmt.Sprintf("The keep-alive interval is the median idle time before the first dropped probe of each connection: %s over %s.",
			fmtDuration(iv), plural(conns, "connection")))
	}
	d.notes = append(d.notes, "The debug log shows each drop as \""+reason.StateExpired.Text()+"\" with how long the connection had been idle.")
	return d
}

// costShort is a fix's memory cost in a few words, for the summary.
func costShort(f fixSpec, rule, global memCost) string {
	if f.scope == scopeRule {
		return rule.String()
	}
	return "at most " + global.String()
}

// serviceWords names the group's service: "10.0.2.20:1521", or "port 1521 of 3
// servers".
func (g *kaGroup) serviceWords() string {
	if len(g.servers.m) == 1 && !g.servers.more {
		for a := range g.servers.m {
			return netip.AddrPortFrom(a, g.port).String()
		}
	}
	return fmt.Sprintf("%s port %d of %s", strings.ToLower(g.proto.String()), g.port, plural(len(g.servers.m), "server"))
}
