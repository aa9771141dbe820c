package insight

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

// asymmetricQuiet: no dropped reply for this long and the path is taken as fixed
// (or the clients gave up).
const asymmetricQuiet = 2 * time.Minute

// A group raises an insight once it holds asymmetricMinConns connections seen only
// from the server's side, or one such connection with asymmetricMinPackets dropped
// packets (a SYN-ACK and its retransmissions: a login that hangs). A lone stray
// reply raises nothing.
const (
	asymmetricMinConns   = 2
	asymmetricMinPackets = 3
)

// asymmetric finds servers whose replies cross the firewall while their clients'
// requests do not: in strict mode (Require3WayHandshake) those replies are dropped
// as handshake_not_completed, and only from one side of each connection. Packets
// from both sides of a connection the table does not know mean its state was lost
// (a restart, a flush), not a path: such connections are counted apart and a
// group made mostly of them raises nothing. Replies that no rule would permit in
// their connection's opening direction are not the handshake's business
// (backscatter of spoofed SYNs elsewhere, scans) and are not grouped at all, and
// SYN-ACKs alone to clients behind an Internet interface raise nothing either
// (backscatter again).
type asymmetric struct {
	base
	groups map[string]*asymGroup
}

func newAsymmetric() *asymmetric { return &asymmetric{groups: map[string]*asymGroup{}} }

func (*asymmetric) kind() Kind { return AsymmetricPath }

type asymGroup struct {
	tracked
	server      netip.AddrPort
	clients     netip.Prefix
	iface       int // where the server's replies come in
	clientIface int // where the clients' packets would come in
	rule        ruleRef
	conns       connSet[asymConn]
	hosts       addrSet
	synAcks     uint64
	fins        uint64
	data        uint64
}

type asymConn struct{ fromServer, fromClient bool }

func (g *asymGroup) oneSided() (server, both int) {
	for _, c := range g.conns.m {
		switch {
		case c.fromServer && c.fromClient:
			both++
		case c.fromServer:
			server++
		}
	}
	return server, both
}

func (a *asymmetric) drop(m *Monitor, d *Drop) {
	if d.Reason != reason.HandshakeNotCompleted || !d.isTCP() || d.Flags&packet.RST != 0 {
		return
	}
	fromServer, rule, permitted := m.env.orient(d)
	if !permitted {
		return
	}
	k := connKey{proto: d.Proto, client: netip.AddrPortFrom(d.Dst, d.DstPort), server: netip.AddrPortFrom(d.Src, d.SrcPort)}
	serverIface, clientIface := d.InIface, d.OutIface
	if !fromServer {
		k.client, k.server = k.server, k.client
		serverIface, clientIface = d.OutIface, d.InIface
	}
	net := m.env.clientNet(k.client.Addr())
	key := fmt.Sprintf("%s|%s|%d", k.server, net, serverIface)
	g := a.groups[key]
	if g == nil {
		if !admit(m, a.groups) {
			return
		}
		g = &asymGroup{server: k.server, clients: net, iface: serverIface, clientIface: clientIface}
		a.groups[key] = g
	}
	g.rule = rule
	g.addDrop(d)
	if c, _ := g.conns.get(k); c != nil {
		if fromServer {
			c.fromServer = true
		} else {
			c.fromClient = true
		}
	}
	if fromServer {
		g.hosts.add(k.client.Addr(), 64)
		switch {
		case d.Flags&packet.SYN != 0:
			g.synAcks++
		case d.Flags&packet.FIN != 0:
			g.fins++
		default:
			g.data++
		}
	}
	if g.rec == nil {
		one, both := g.oneSided()
		// Replies that went on past the SYN-ACK mean their clients got the
		// SYN-ACK another way. SYN-ACKs alone may also be backscatter (the
		// answers to SYNs someone spoofed with our addresses), which only
		// public addresses get: for clients behind an Internet interface they
		// are not enough.
		progressed := g.data+g.fins > 0
		internal := false
		if ifs := m.env.rules.Interfaces(); clientIface >= 0 && clientIface < len(ifs) {
			internal = ifs[clientIface].Group != policy.Internet
		}
		if (progressed || internal) &&
			(one >= asymmetricMinConns || (one >= 1 && g.synAcks+g.data+g.fins >= asymmetricMinPackets)) && one >= 2*both {
			g.rec = m.raise(a, key, g, asymmetricQuiet)
		}
		return
	}
	m.touched(g.rec)
}

func (a *asymmetric) forget(key string) { delete(a.groups, key) }

func (g *asymGroup) describe(v *env) description {
	one, both := g.oneSided()
	replies := g.synAcks + g.data + g.fins
	clients := g.clients.String()
	fixes := v.usableFixes(g.fixes(v))
	meanwhile := ""
	if len(fixes) > 0 {
		meanwhile = " Meanwhile: " + fixes[0].title + "."
	}
	connWords := plural(one, "connection")
	if g.conns.more {
		connWords = "at least " + connWords
	}
	d := description{
		severity: Critical,
		countOf:  "dropped packets",
		summary: fmt.Sprintf("%s answers %s on %s whose requests never crossed the firewall: a path bypasses it "+
			"(a switch or route leaks the requests). Fix the path.%s", g.server, clients, connWords, meanwhile),
		conns: one, connsAtLeast: g.conns.more, connList: g.conns.list(5),
		fixes: fixes,
		figures: map[string]float64{
			"connections":     float64(one),
			"dropped_packets": float64(g.count),
			"replies":         float64(replies),
			"syn_acks":        float64(g.synAcks),
			"clients":         float64(len(g.hosts.m)),
			"both_sides":      float64(both),
			"server_port":     float64(g.server.Port()),
		},
	}
	serverNote := "replies arrive on " + v.ifaceName(g.iface)
	d.hosts = append(d.hosts, Host{Addr: g.server.String(), Role: "server", Note: serverNote})
	d.hosts = append(d.hosts, Host{Addr: clients, Role: "clients", Note: hostList(g.hosts, 5)})

	var pk []string
	if g.synAcks > 0 {
		pk = append(pk, plural(int(g.synAcks), "SYN-ACK"))
	}
	if g.data > 0 {
		pk = append(pk, fmt.Sprintf("%d ACK or data", g.data))
	}
	if g.fins > 0 {
		pk = append(pk, plural(int(g.fins), "FIN"))
	}
	d.notes = append(d.notes, fmt.Sprintf("%s from %s dropped as %q: %s.", plural(int(replies), "reply"), g.server,
		reason.HandshakeNotCompleted.Text(), strings.Join(pk, ", ")))
	if both == 0 {
		d.notes = append(d.notes, fmt.Sprintf("No packet of these connections came from the clients' side: their SYNs and requests reached %s another way.", g.server.Addr()))
	} else {
		d.notes = append(d.notes, fmt.Sprintf("%s sent packets from both sides without a handshake: lost state (a restart or a flush), not the path.", plural(both, "other connection")))
	}
	if ci := v.ifaceName(g.clientIface); ci != "unknown" {
		d.notes = append(d.notes, fmt.Sprintf("%s is reached through interface %s; the replies to it come in on %s, so its requests should have crossed %s.",
			clients, ci, v.ifaceName(g.iface), ci))
	}
	if g.rule.index >= 0 {
		d.notes = append(d.notes, fmt.Sprintf("Rule '%s' permits these connections (from %s to %s): they are wanted traffic.", g.rule.name, clients, g.server))
	}
	return d
}

func (g *asymGroup) fixes(v *env) []fixSpec {
	var out []fixSpec
	if g.rule.index >= 0 {
		out = append(out, fixSpec{
			scope: scopeRule, title: fmt.Sprintf("Handshake=loose on rule '%s' only", g.rule.name),
			change: change{ruleID: g.rule.id, option: "Handshake", value: "loose"},
			cost: fmt.Sprintf("connections rule '%s' permits may be picked up mid-stream from either side, with their windows "+
				"checked liberally until both sides are seen (a one-sided connection lasts TcpPickupTimeout after its last packet); "+
				"the rule is still checked in the opening direction and every other rule keeps the handshake check", g.rule.name),
		})
	}
	out = append(out, fixSpec{
		scope: scopeGlobal, title: "Require3WayHandshake=0",
		change: change{setting: "Require3WayHandshake", value: "0"},
		cost: "every connection, for every rule, may be picked up mid-stream: the firewall stops noticing asymmetric paths " +
			"anywhere and any host can create state with a bare ACK (the rules are still checked in the opening direction); " +
			"set it back to 1 once the path is fixed",
	})
	return out
}

// hostList names up to n addresses of s, busiest first.
func hostList(s addrSet, n int) string {
	addrs := sortedAddrs(s.m)
	var parts []string
	for _, a := range addrs[:min(n, len(addrs))] {
		parts = append(parts, a.String())
	}
	out := plural(len(s.m), "host")
	if s.more {
		out = "more than " + out
	}
	if len(parts) > 0 {
		out += ": " + strings.Join(parts, ", ")
		if len(addrs) > n {
			out += ", ..."
		}
	}
	return out
}
