package insight

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/reason"
)

// pressureQuiet: the table below the adaptive threshold (or 90 % of its limit
// when adaptive timeouts are off), with no eviction or refusal, for this long.
const pressureQuiet = 5 * time.Minute

// pressureFull is the share of the limit that counts as near full when adaptive
// timeouts are off.
const pressureFull = 0.9

// maxPressureSources bounds the sources table_pressure counts evictions and
// refusals by.
const maxPressureSources = 256

// pressure watches the table's size against its limit, from the ticks, and the
// connections a full table evicts or refuses, from the connection ends and the
// table_full drops: who fills it and with what.
type pressure struct {
	base
	g *pressureGroup // nil until the table first came under pressure
}

func newPressure() *pressure { return &pressure{} }

func (*pressure) kind() Kind { return TablePressure }

type pressureGroup struct {
	tracked
	p         *pressure
	conns     int // at the last tick
	peak      int
	peakAt    int64
	limit     int
	adStart   int
	adEnd     int
	evicted   uint64
	refused   uint64
	states    [16]uint64 // evicted connections by state
	sources   addrSet    // opening side of evicted and refused connections
	evRate    minute
	refRate   minute
	lastTable Table
}

const pressureKey = "table"

// under reports whether the table is under pressure at t: adaptive timeouts
// engaged, or near full without them.
func under(t *Table) bool {
	switch {
	case t.MaxConns <= 0:
		return false
	case t.AdaptiveStart > 0:
		return t.Conns > t.AdaptiveStart
	}
	return float64(t.Conns) >= pressureFull*float64(t.MaxConns)
}

func (p *pressure) group() *pressureGroup {
	if p.g == nil {
		p.g = &pressureGroup{p: p}
	}
	return p.g
}

func (p *pressure) tick(m *Monitor, now int64) {
	t, prev := m.env.table, m.env.prevTable
	evicted, refused := sub(t.Evicted, prev.Evicted), sub(t.TableFull, prev.TableFull)
	if !under(&t) && evicted == 0 && refused == 0 {
		if p.g != nil && p.g.rec == nil && now-p.g.last > int64(pressureQuiet) {
			p.g = nil // a few evictions long ago, never under pressure since
		}
		return
	}
	g := p.group()
	g.conns, g.limit, g.adStart, g.adEnd, g.lastTable = t.Conns, t.MaxConns, t.AdaptiveStart, t.AdaptiveEnd, t
	if t.Conns > g.peak {
		g.peak, g.peakAt = t.Conns, now
	}
	// The ends and drops counted the evictions and refusals one by one; a tick
	// only says the pressure goes on.
	g.seen(now, 0)
	if g.rec == nil {
		g.rec = m.raise(p, pressureKey, g, pressureQuiet)
		return
	}
	m.touched(g.rec)
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0 // the counters started again (a new table)
	}
	return a - b
}

func (p *pressure) end(m *Monitor, e *End) {
	if e.Cause != conntrack.EndEvicted {
		return
	}
	g := p.group()
	g.evicted++
	g.evRate.add(e.At, 1)
	if int(e.Info.State) < len(g.states) {
		g.states[e.Info.State]++
	}
	g.sources.add(e.Info.Src, maxPressureSources)
	g.addEnd(e)
	if g.rec != nil {
		m.touched(g.rec)
	}
}

func (p *pressure) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.TableFull {
		return
	}
	g := p.group()
	g.refused++
	g.refRate.add(d.Time, 1)
	g.sources.add(d.Src, maxPressureSources)
	g.addDrop(d)
	if g.rec != nil {
		m.touched(g.rec)
	}
}

func (p *pressure) forget(string) { p.g = nil }

// scale is the factor adaptive timeouts apply at n connections (pf's formula).
func (g *pressureGroup) scale(n int) float64 {
	if g.adEnd <= g.adStart || n <= g.adStart {
		return 1
	}
	if n >= g.adEnd {
		return 0
	}
	return float64(g.adEnd-n) / float64(g.adEnd-g.adStart)
}

func (g *pressureGroup) describe(v *env) description {
	now := max(v.tableAt, g.last)
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(g.limit, 1)) }
	var sb strings.Builder
	fmt.Fprintf(&sb, "The connection table holds %s of its %s connections (%.0f %%; peak %s)", count(g.conns), count(g.limit), pct(g.conns), count(g.peak))
	if f := g.scale(g.conns); f < 1 {
		fmt.Fprintf(&sb, ": every idle timeout is cut to %.0f %% of its value (adaptive timeouts from %s, %.0f %%)", 100*f, count(g.adStart), pct(g.adStart))
	}
	sb.WriteString(".")
	if g.evicted > 0 || g.refused > 0 {
		fmt.Fprintf(&sb, " Since %s, %s evicted to make room", utc(g.first).Format(time.TimeOnly), plural(int(g.evicted), "connection was"))
		if g.refused > 0 {
			fmt.Fprintf(&sb, " and %s refused (table_full)", plural(int(g.refused), "new connection"))
		}
		sb.WriteString(";")
		fmt.Fprintf(&sb, " over the last minute %.1f evictions and %.1f refusals a second.", float64(g.evRate.total(now))/60, float64(g.refRate.total(now))/60)
	}
	halfOpen := g.states[conntrack.StateSynSent] + g.states[conntrack.StateSynSent2] + g.states[conntrack.StateSynRecv]
	if g.evicted > 0 && halfOpen*2 > g.evicted {
		fmt.Fprintf(&sb, " Most evicted connections were half-open (%.0f %% in SYN_SENT or SYN_RECV): a flood of SYNs, or a server that does not answer.", 100*float64(halfOpen)/float64(g.evicted))
	}
	top := sortedAddrs(g.sources.m)
	events := g.evicted + g.refused
	dominant := netip.Addr{}
	if len(top) > 0 && events > 0 && g.sources.m[top[0]]*10 >= events*3 {
		dominant = top[0]
		fmt.Fprintf(&sb, " %s opened %.0f %% of them.", dominant, 100*float64(g.sources.m[dominant])/float64(events))
	}
	sev := Warning
	if g.refused > 0 {
		sev = Critical
	}

	bytes, _ := v.memory()
	var fixes []fixSpec
	newLimit := 1 << bits.Len(uint(2*max(g.limit, g.peak)-1))
	cost := fmt.Sprintf("up to %s more connections held when full", count(newLimit-g.limit))
	if bytes > 0 {
		cost += fmt.Sprintf(", %s at %.0f bytes each", memSize(float64(newLimit-g.limit)*bytes/(1<<20)), bytes)
	}
	cost += "; the adaptive thresholds, in percent of the limit, move with it"
	fixes = append(fixes, fixSpec{scope: scopeGlobal, title: fmt.Sprintf("MaxConnections=%d", newLimit),
		change: change{setting: "MaxConnections", value: fmt.Sprint(newLimit)}, cost: cost})
	if g.evicted > 0 && halfOpen*2 > g.evicted && v.cfg != nil {
		cur := v.cfg.Settings.Timeouts.TCPSynSent
		if cur > 30*time.Second {
			fixes = append(fixes, fixSpec{scope: scopeGlobal, title: "TcpSynSentTimeout=30",
				change: change{setting: "TcpSynSentTimeout", value: "30"},
				cost:   fmt.Sprintf("half-open connections go after 30 s instead of %s; a client whose SYNs are still unanswered after 30 s (its fifth try) starts over", fmtDuration(cur))})
		}
	}
	if dominant.IsValid() {
		fixes = append(fixes, fixSpec{scope: scopeOperation, title: fmt.Sprintf("look at what %s holds", dominant),
			command: fmt.Sprintf("keepstate conntrack list src %s", dominant),
			cost:    "none; flushing them (conntrack flush src ...) frees the room at once but breaks that host's connections"})
	}
	fixes = v.usableFixes(fixes)

	d := description{
		severity: sev, countOf: "connections evicted or refused", summary: sb.String(), fixes: fixes,
		figures: map[string]float64{
			"connections":     float64(g.conns),
			"peak":            float64(g.peak),
			"limit":           float64(g.limit),
			"adaptive_start":  float64(g.adStart),
			"timeout_scale":   g.scale(g.conns),
			"evicted":         float64(g.evicted),
			"refused":         float64(g.refused),
			"half_open_evict": float64(halfOpen),
			"evictions_per_s": float64(g.evRate.total(now)) / 60,
			"refusals_per_s":  float64(g.refRate.total(now)) / 60,
		},
	}
	for _, a := range top[:min(5, len(top))] {
		if g.sources.m[a]*20 < events {
			break // under 5 %: the room is taken by many, none worth naming
		}
		d.hosts = append(d.hosts, Host{Addr: a.String(), Role: "source", Note: plural(int(g.sources.m[a]), "connection") + " evicted or refused"})
	}
	if len(d.hosts) == 0 && len(top) > 0 {
		n := count(len(top))
		if g.sources.more {
			n = "more than " + n
		}
		d.notes = append(d.notes, fmt.Sprintf("The evicted and refused connections came from %s sources, none with 5 %% of them.", n))
	}
	if bytes > 0 {
		d.figures["table_mib"] = float64(g.conns) * bytes / (1 << 20)
		d.notes = append(d.notes, fmt.Sprintf("The table holds %s at %.0f bytes a connection.", memSize(float64(g.conns)*bytes/(1<<20)), bytes))
	}
	var st []string
	for s, n := range g.states {
		if n > 0 {
			st = append(st, fmt.Sprintf("%s %d", conntrack.State(s), n))
		}
	}
	if len(st) > 0 {
		d.notes = append(d.notes, "Evicted, by state: "+strings.Join(st, ", ")+". Eviction takes the oldest connections not yet assured first.")
	}
	return d
}

func roundUpInt(v, step int) int { return (v + step - 1) / step * step }
