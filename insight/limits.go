package insight

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/reason"
)

// limitsQuiet: no refusal for this long and the host is taken to be below its
// limit again.
const limitsQuiet = 5 * time.Minute

// limitsMinRefused refusals raise the insight: a host that brushes its limit once
// is not news, one that keeps hitting it is.
const limitsMinRefused = 3

// maxLimitDests bounds the destinations counted per host.
const maxLimitDests = 16

// limits finds hosts that keep hitting a per-source connection limit: the
// global concurrent one (ConnLimitPerSource), the global rate
// (NewConnLimitPerSourcePerMinute), or a rule's own (MaxConnectionsPerSource).
// Grouped by host and limit.
type limits struct {
	base
	groups map[string]*limitGroup
}

func newLimits() *limits { return &limits{groups: map[string]*limitGroup{}} }

func (*limits) kind() Kind { return ConnectionLimitHit }

type limitGroup struct {
	tracked
	src   netip.Addr
	which conntrack.Limit
	rule  ruleRef // the rule that admitted the refused connections (its limit, for LimitRule)
	rate  minute
	dests map[netip.AddrPort]uint64
	more  bool
}

func (l *limits) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.ConnectionLimit || d.IPv() == 0 {
		return
	}
	rule := m.env.ruleAt(d.Rule)
	key := fmt.Sprintf("%s|%d", d.Src, d.Limit)
	if d.Limit == conntrack.LimitRule {
		key += fmt.Sprintf("|%d", rule.id)
	}
	g := l.groups[key]
	if g == nil {
		if !admit(m, l.groups) {
			return
		}
		g = &limitGroup{src: d.Src, which: d.Limit, dests: map[netip.AddrPort]uint64{}}
		l.groups[key] = g
	}
	g.rule = rule
	g.addDrop(d)
	g.rate.add(d.Time, 1)
	dst := netip.AddrPortFrom(d.Dst, d.DstPort)
	if _, ok := g.dests[dst]; ok || len(g.dests) < maxLimitDests {
		g.dests[dst]++
	} else {
		g.more = true
	}
	if g.rec == nil {
		if g.count >= limitsMinRefused {
			g.rec = m.raise(l, key, g, limitsQuiet)
		}
		return
	}
	m.touched(g.rec)
}

func (l *limits) forget(key string) { delete(l.groups, key) }

// limit is the value of the limit the group hits and its name in the file.
func (g *limitGroup) limit(v *env) (n int, name string) {
	switch g.which {
	case conntrack.LimitPerMinute:
		if v.cfg != nil {
			n = v.cfg.Settings.NewConnLimitPerSourcePerMinute
		}
		return n, "NewConnLimitPerSourcePerMinute"
	case conntrack.LimitRule:
		if g.rule.index >= 0 {
			n = v.rules.Rule(g.rule.index).MaxConnectionsPerSource
		}
		return n, "MaxConnectionsPerSource"
	}
	if v.cfg != nil {
		n = v.cfg.Settings.ConnLimitPerSource
	}
	return n, "ConnLimitPerSource"
}

func (g *limitGroup) describe(v *env) description {
	now := max(v.tableAt, g.last)
	perSec := float64(g.rate.total(now)) / 60
	n, name := g.limit(v)
	var what string
	switch g.which {
	case conntrack.LimitPerMinute:
		what = fmt.Sprintf("its limit of %s new connections a minute (%s)", count(n), name)
	case conntrack.LimitRule:
		what = fmt.Sprintf("the limit of rule '%s', %s connections open at once from one host (%s)", g.rule.name, count(n), name)
	default:
		what = fmt.Sprintf("its limit of %s connections open at once (%s)", count(n), name)
	}
	dests := make([]netip.AddrPort, 0, len(g.dests))
	for a := range g.dests {
		dests = append(dests, a)
	}
	slices.SortFunc(dests, func(a, b netip.AddrPort) int {
		if g.dests[a] != g.dests[b] {
			return int(g.dests[b]) - int(g.dests[a])
		}
		return a.Compare(b)
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s keeps hitting %s: %s refused since %s, %.1f a second over the last minute",
		g.src, what, plural(int(g.count), "new connection"), utc(g.first).Format(time.TimeOnly), perSec)
	if len(dests) > 0 {
		fmt.Fprintf(&sb, ", most to %s", dests[0])
		if g.rule.index >= 0 {
			fmt.Fprintf(&sb, " (rule '%s')", g.rule.name)
		}
	}
	sb.WriteString(". A proxy, NAT gateway or busy server needs a higher limit; a single client that opens this many is looping or scanning.")

	bytes, _ := v.memory()
	memFor := func(extra int) string {
		s := fmt.Sprintf("up to %s more connections from each host that uses it", count(extra))
		if bytes > 0 {
			s += fmt.Sprintf(" (%s each)", memSize(float64(extra)*bytes/(1<<20)))
		}
		return s
	}
	var fixes []fixSpec
	switch g.which {
	case conntrack.LimitRule:
		if g.rule.index >= 0 && n > 0 {
			fixes = append(fixes, fixSpec{scope: scopeRule, title: fmt.Sprintf("MaxConnectionsPerSource=%d on rule '%s' only", 2*n, g.rule.name),
				change: change{ruleID: g.rule.id, option: "MaxConnectionsPerSource", value: fmt.Sprint(2 * n)},
				cost:   memFor(n) + ", through this rule only; ConnLimitPerSource still bounds each host"})
		}
	case conntrack.LimitPerMinute:
		want := roundUpInt(int(float64(n)+perSec*60*1.2), 100)
		if want > n {
			fixes = append(fixes, fixSpec{scope: scopeGlobal, title: fmt.Sprintf("%s=%d", name, want),
				change: change{setting: name, value: fmt.Sprint(want)},
				cost:   fmt.Sprintf("every host may open %s new connections a minute instead of %s: a flood from one host fills the table %.1f times faster", count(want), count(n), float64(want)/float64(max(n, 1)))})
		}
	default:
		if n > 0 {
			fixes = append(fixes, fixSpec{scope: scopeGlobal, title: fmt.Sprintf("%s=%d", name, 2*n),
				change: change{setting: name, value: fmt.Sprint(2 * n)},
				cost:   memFor(n) + fmt.Sprintf("; to keep other hosts at %d, give the rules they use MaxConnectionsPerSource=%d", n, n)})
		}
	}
	fixes = append(fixes, fixSpec{scope: scopeOperation, title: fmt.Sprintf("look at what %s holds", g.src),
		command: fmt.Sprintf("keepstate conntrack list src %s", g.src),
		cost:    "none: shows its connections, oldest first, with their rules and idle times"})
	fixes = v.usableFixes(fixes)

	d := description{
		severity: Warning, countOf: "refused connections", summary: sb.String(), fixes: fixes,
		hosts: []Host{{Addr: g.src.String(), Role: "source", Note: plural(int(g.count), "refusal")}},
		figures: map[string]float64{
			"refused":        float64(g.count),
			"refused_per_s":  perSec,
			"limit":          float64(n),
			"destinations":   float64(len(g.dests)),
			"limit_per_min":  b2f(g.which == conntrack.LimitPerMinute),
			"limit_of_rule":  b2f(g.which == conntrack.LimitRule),
			"rule_id":        float64(g.rule.id),
			"limit_at_once":  b2f(g.which == conntrack.LimitConcurrent),
			"top_dest_count": 0,
		},
	}
	if len(dests) > 0 {
		d.figures["top_dest_count"] = float64(g.dests[dests[0]])
	}
	for _, a := range dests[:min(5, len(dests))] {
		d.hosts = append(d.hosts, Host{Addr: a.String(), Role: "destination", Note: plural(int(g.dests[a]), "refusal")})
	}
	return d
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
