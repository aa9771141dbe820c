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

// A burst is desyncMinConns established connections (or one in a thousand the
// table holds, if more) with packets dropped as out of window within
// desyncWindow. Loss and retransmissions stay inside the windows; a few broken
// stacks make the odd out-of-window packet, not a burst on many connections.
const (
	desyncMinConns = 8
	desyncPerMille = 1
	desyncWindow   = 10 * time.Second
	desyncQuiet    = time.Minute
)

// desync finds bursts of out-of-window drops on established connections: their
// sequence numbers changed under the firewall, many at once. Grouped by the pair
// of interfaces the connections cross.
type desync struct {
	base
	groups map[string]*desyncGroup
}

func newDesync() *desync { return &desync{groups: map[string]*desyncGroup{}} }

func (*desync) kind() Kind { return WindowDesync }

type desyncGroup struct {
	tracked
	ifA, ifB int
	conns    map[uint64]*desyncConn // by connection id, at most maxConns
	more     bool
	clients  addrSet
	servers  addrSet
	rules    map[uint32]uint64
	burst    time.Duration // span of the burst that raised it
	burstN   int           // connections in it
}

type desyncConn struct {
	first, last int64
	key         connKey
	drops       uint64
}

func (w *desync) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.OutOfWindow || !d.isTCP() || d.State != conntrack.StateEstablished || d.ConnID == 0 {
		return
	}
	a, b := d.InIface, d.OutIface
	if b < a {
		a, b = b, a
	}
	key := fmt.Sprintf("%d|%d", a, b)
	g := w.groups[key]
	if g != nil && g.rec == nil && d.Time-g.last > int64(desyncQuiet) {
		g = nil // sporadic drops long ago: count afresh
	}
	if g == nil {
		if !admit(m, w.groups) {
			return
		}
		g = &desyncGroup{ifA: a, ifB: b, conns: map[uint64]*desyncConn{}, rules: map[uint32]uint64{}}
		w.groups[key] = g
	}
	g.addDrop(d)
	k := connKey{proto: d.Proto, client: netip.AddrPortFrom(d.Src, d.SrcPort), server: netip.AddrPortFrom(d.Dst, d.DstPort)}
	if d.Dir == conntrack.Reply {
		k.client, k.server = k.server, k.client
	}
	c := g.conns[d.ConnID]
	if c == nil {
		if len(g.conns) >= maxConns {
			g.more = true
		} else {
			c = &desyncConn{first: d.Time, key: k}
			g.conns[d.ConnID] = c
			g.clients.add(k.client.Addr(), 64)
			g.servers.add(k.server.Addr(), 64)
			if len(g.rules) < maxGroups {
				g.rules[d.ConnRule]++
			}
		}
	}
	if c != nil {
		c.last, c.drops = d.Time, c.drops+1
	}
	if g.rec != nil {
		m.touched(g.rec)
		return
	}
	if c == nil || c.drops > 1 {
		return // the count of connections in the window only grows with a new one
	}
	need := max(desyncMinConns, m.env.table.Conns*desyncPerMille/1000)
	n, from := 0, d.Time
	for _, x := range g.conns {
		if d.Time-x.last <= int64(desyncWindow) {
			n++
			from = min(from, x.first)
		}
	}
	if n >= need {
		g.burst, g.burstN = time.Duration(d.Time-from), n
		g.rec = m.raise(w, key, g, desyncQuiet)
	}
}

func (w *desync) forget(key string) { delete(w.groups, key) }

func (g *desyncGroup) describe(v *env) description {
	n := len(g.conns)
	connWords := plural(n, "established connection")
	if g.more {
		connWords = "more than " + connWords
	}
	between := fmt.Sprintf("between %s and %s", v.ifaceName(g.ifA), v.ifaceName(g.ifB))
	if g.ifA == g.ifB {
		between = "on " + v.ifaceName(g.ifA)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s had %s dropped as out of window, the first %d of them within %s: their sequence numbers moved away from what keepstate tracked, on many connections at once, which loss does not do. ",
		connWords, between, plural(int(g.count), "packet"), g.burstN, fmtDuration(g.burst))
	sb.WriteString("A path changed (the packets now cross a device that rewrites sequence numbers, or take another path after a failover) or a peer or keepstate restarted with stale state. These connections stay blocked until they reset or time out.")

	// Where they are: the busiest client network and server, for a flush.
	var filter []string
	clients, servers := sortedAddrs(g.clients.m), sortedAddrs(g.servers.m)
	if len(clients) > 0 {
		filter = append(filter, "src", v.clientNet(clients[0]).String())
	}
	if len(servers) == 1 {
		filter = append(filter, "dst", servers[0].String())
	}
	var fixes []fixSpec
	fixes = append(fixes, fixSpec{scope: scopeOperation, title: "forget the stuck connections",
		command: "keepstate conntrack flush " + strings.Join(filter, " "),
		cost:    "they are forgotten: with the handshake check on, their next packets are dropped as handshake not completed and the applications reconnect (they are stuck anyway); with Handshake=loose on their rule they are picked up again mid-stream"})
	var top uint32
	var topN uint64
	for id, c := range g.rules {
		if c > topN || (c == topN && id < top) {
			top, topN = id, c
		}
	}
	if r := v.ruleByStoredID(top); r.index >= 0 {
		fixes = append(fixes, fixSpec{scope: scopeRule, title: fmt.Sprintf("Handshake=loose on rule '%s' only", r.name),
			change: change{ruleID: r.id, option: "Handshake", value: "loose"},
			cost:   fmt.Sprintf("connections of rule '%s' that keepstate forgets (flushed, expired, a restart without state) are picked up again from their next packet, with their windows checked liberally until both sides are seen; other rules keep the handshake check", r.name)})
	}
	fixes = v.usableFixes(fixes)
	var list []string
	for _, c := range g.conns {
		if len(list) == 5 {
			break
		}
		list = append(list, c.key.String())
	}
	slices.Sort(list)
	d := description{
		severity: Critical, countOf: "dropped packets", summary: sb.String(), fixes: fixes,
		conns: n, connsAtLeast: g.more, connList: list,
		figures: map[string]float64{
			"connections":     float64(n),
			"dropped_packets": float64(g.count),
			"burst_s":         g.burst.Seconds(),
			"clients":         float64(len(g.clients.m)),
			"servers":         float64(len(g.servers.m)),
		},
	}
	for _, a := range clients[:min(3, len(clients))] {
		d.hosts = append(d.hosts, Host{Addr: a.String(), Role: "client"})
	}
	for _, a := range servers[:min(3, len(servers))] {
		d.hosts = append(d.hosts, Host{Addr: a.String(), Role: "server"})
	}
	d.notes = append(d.notes, "Each of these connections was established (its handshake seen) before its packets fell outside the window.")
	return d
}
