package insight

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"

	"keepstate/config"
	"keepstate/packet"
	"keepstate/policy"
)

// tracked is what every group has: its evidence and, once raised, its insight.
type tracked struct {
	evidence
	rec *record
}

func (t *tracked) raised() bool { return t.rec != nil && t.rec.open }

// raisable is a group a detector keeps in a bounded map.
type raisable interface {
	group
	raised() bool
}

// admit makes room in groups for one more: at maxGroups, the group seen least
// recently that has not raised an insight goes. It returns false (and counts the
// miss) when every group there has raised one: they stay, the new one is not
// tracked.
func admit[G raisable](m *Monitor, groups map[string]G) bool {
	if len(groups) < maxGroups {
		return true
	}
	victim, oldest := "", int64(0)
	for k, g := range groups {
		if g.raised() {
			continue
		}
		if last := g.ev().last; victim == "" || last < oldest {
			victim, oldest = k, last
		}
	}
	if victim == "" {
		m.stats.GroupsDropped++
		return false
	}
	delete(groups, victim)
	return true
}

// connKey names a connection in its opening direction.
type connKey struct {
	proto          packet.Proto
	client, server netip.AddrPort
}

func (k connKey) String() string { return tupleString(k.proto, k.client, k.server) }

// maxConns bounds the connections a group tells apart.
const maxConns = 1024

// connSet remembers up to maxConns connections of a group, each with a value; past
// that it still counts connections it cannot tell apart as "at least".
type connSet[V any] struct {
	m     map[connKey]*V
	order []connKey // first maxConns, in the order seen, for listing
	more  bool      // some connection was not kept
}

// get returns the value of k, adding it if there is room (nil if not).
func (s *connSet[V]) get(k connKey) (v *V, added bool) {
	if s.m == nil {
		s.m = make(map[connKey]*V)
	}
	if v, ok := s.m[k]; ok {
		return v, false
	}
	if len(s.m) >= maxConns {
		s.more = true
		return nil, false
	}
	v = new(V)
	s.m[k] = v
	s.order = append(s.order, k)
	return v, true
}

func (s *connSet[V]) len() int { return len(s.m) }

// list returns the first n connections as strings.
func (s *connSet[V]) list(n int) []string {
	out := make([]string, 0, min(n, len(s.order)))
	for _, k := range s.order[:min(n, len(s.order))] {
		out = append(out, k.String())
	}
	return out
}

// addrSet is a bounded set of addresses.
type addrSet struct {
	m    map[netip.Addr]uint64 // address -> events
	more bool
}

func (s *addrSet) add(a netip.Addr, limit int) {
	if s.m == nil {
		s.m = make(map[netip.Addr]uint64)
	}
	if _, ok := s.m[a]; !ok && len(s.m) >= limit {
		s.more = true
		return
	}
	s.m[a]++
}

// query is the rules' question about a dropped packet as it travelled.
func (d *Drop) query() policy.Query {
	return policy.Query{Src: d.Src, Dst: d.Dst, Proto: uint8(d.Proto), SrcPort: d.SrcPort, DstPort: d.DstPort,
		ICMPType: d.ICMPType, InIface: d.InIface, OutIface: d.OutIface}
}

// ruleRef is the rule that permits a connection, by position and identity.
type ruleRef struct {
	index int    // in the ruleset; -1 none
	id    int    // its configuration id; 0 none
	name  string // its name
}

func (v *env) ruleAt(i int) ruleRef {
	if v.rules == nil || i < 0 || i >= v.rules.NumRules() {
		return ruleRef{index: -1}
	}
	r := v.rules.Rule(i)
	return ruleRef{index: i, id: r.ID, name: r.Name}
}

// ruleByStoredID finds the rule a connection's stored identity names (see
// Drop.ConnRule).
func (v *env) ruleByStoredID(id uint32) ruleRef {
	if v.rules == nil || id == 0 {
		return ruleRef{index: -1}
	}
	for i := 0; i < v.rules.NumRules(); i++ {
		r := v.rules.Rule(i)
		if (r.ID > 0 && uint32(r.ID) == id) || (r.ID <= 0 && uint32(i+1) == id) {
			return v.ruleAt(i)
		}
	}
	return ruleRef{index: -1}
}

// orient says which side of a dropped TCP packet's connection is the server, and
// the rule that permits the connection in its opening direction. The rules are
// written in the direction connections open ("web servers to Tomcat"), so, as the
// engine does for a pickup: a SYN-ACK comes from the server; otherwise the
// direction the rules permit, and when both are, the lower port is the server's.
func (v *env) orient(d *Drop) (fromServer bool, r ruleRef, permitted bool) {
	if v.rules == nil {
		return d.SrcPort < d.DstPort, ruleRef{index: -1}, false
	}
	q := d.query()
	rq := q.Reverse()
	ri, ra := v.rules.Match(&rq)
	if d.Flags&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK {
		return true, v.ruleAt(ri), ra == policy.Permit
	}
	fi, fa := v.rules.Match(&q)
	switch {
	case ra == policy.Permit && (fa != policy.Permit || d.SrcPort < d.DstPort):
		return true, v.ruleAt(ri), true
	case fa == policy.Permit:
		return false, v.ruleAt(fi), true
	}
	return d.SrcPort < d.DstPort, ruleRef{index: -1}, false
}

// clientNet is the network a client address belongs to: the smallest network of
// a configured interface that holds it, else its /24 (IPv4) or /64 (IPv6).
func (v *env) clientNet(a netip.Addr) netip.Prefix {
	best := netip.Prefix{}
	if v.rules != nil {
		for _, ifc := range v.rules.Interfaces() {
			for _, ps := range [][]netip.Prefix{ifc.Addresses, ifc.Networks} {
				for _, p := range ps {
					p = p.Masked()
					if p.Contains(a) && p.Bits() > 0 && (!best.IsValid() || p.Bits() > best.Bits()) {
						best = p
					}
				}
			}
		}
	}
	if best.IsValid() {
		return best
	}
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// fixable reports whether a change can be made on the configuration in force
// and changes something.
func (v *env) fixable(c change) bool {
	if v.cfg == nil {
		return false
	}
	after, err := c.changed(v.cfg)
	return err == nil && !bytes.Equal(config.Marshal(after), config.Marshal(v.cfg))
}

// usableFixes keeps the fixes that can be made on the configuration in force.
func (v *env) usableFixes(specs []fixSpec) []fixSpec {
	var out []fixSpec
	for _, s := range specs {
		if s.change.isZero() || v.fixable(s.change) {
			out = append(out, s)
		}
	}
	return out
}

// sortedAddrs returns the addresses of m, most events first, then in address order.
func sortedAddrs(m map[netip.Addr]uint64) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return a.Compare(b)
	})
	return out
}
