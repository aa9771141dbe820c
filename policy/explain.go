package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// RuleCheck says whether one rule matches a query and, when it does not, which
// field stopped it. It is built for people (`keepstate explain`), not for the packet
// path: Explain walks the model's terms one by one and allocates.
type RuleCheck struct {
	Rule    int    // index of the rule, as Ruleset.Match numbers them
	Name    string // the rule's name
	Matched bool
	// Field is the first field that did not match: "enabled", "source",
	// "destination" or "service"; empty when the rule matched.
	Field string
	// Detail says why, in words: what the field holds and what the query had, or
	// (for a match) which term of each field matched.
	Detail string
}

// Explain evaluates rule i of m against q with the semantics Ruleset.Match
// implements: a rule matches when it is enabled, its source matches the source
// address or the ingress interface, its destination the destination address or the
// egress interface, and one of its services the protocol and port (or ICMP type).
// q's interface indexes refer to m.Interfaces (the Ruleset keeps their order).
func (m *Model) Explain(i int, q *Query) RuleCheck {
	r := &m.Rules[i]
	rc := RuleCheck{Rule: i, Name: r.Name}
	if !r.Enabled {
		rc.Field, rc.Detail = "enabled", "the rule is disabled"
		return rc
	}
	srcWhy, ok := m.explainSide(r.Source, q.Src, q.InIface, "ingress")
	if !ok {
		rc.Field, rc.Detail = "source", srcWhy
		return rc
	}
	dstWhy, ok := m.explainSide(r.Destination, q.Dst, q.OutIface, "egress")
	if !ok {
		rc.Field, rc.Detail = "destination", dstWhy
		return rc
	}
	svcWhy, ok := m.explainServices(r.Services, q)
	if !ok {
		rc.Field, rc.Detail = "service", svcWhy
		return rc
	}
	rc.Matched = true
	rc.Detail = fmt.Sprintf("source %s; destination %s; service %s", srcWhy, dstWhy, svcWhy)
	return rc
}

// Model returns a copy of the model r was compiled from (its slices shared:
// callers must not modify their elements, only replace them).
func (r *Ruleset) Model() Model {
	m := r.model
	m.Rules = slices.Clone(m.Rules)
	return m
}

// Explain is Model.Explain on the model r was compiled from.
func (r *Ruleset) Explain(i int, q *Query) RuleCheck { return r.model.Explain(i, q) }

// ifaceName returns the name of interface j of m, or "unknown".
func (m *Model) ifaceName(j int) string {
	if j >= 0 && j < len(m.Interfaces) {
		return m.Interfaces[j].Name
	}
	return "unknown"
}

// explainSide evaluates one address side: it matches when any term matches the
// address or the interface. The text names the matching term, or lists what the
// side holds against what the query had.
func (m *Model) explainSide(terms []Term, a netip.Addr, iface int, ifaceRole string) (string, bool) {
	if len(terms) == 0 {
		return "any (empty)", true
	}
	a = a.Unmap()
	for _, t := range terms {
		if m.termMatches(t, a, iface) {
			return fmt.Sprintf("%s matches %s", FormatTerm(t), describeAddr(a, m.ifaceName(iface), ifaceRole)), true
		}
	}
	names := make([]string, len(terms))
	for k, t := range terms {
		names[k] = FormatTerm(t)
	}
	return fmt.Sprintf("%s does not match %s", strings.Join(names, TermSeparator), describeAddr(a, m.ifaceName(iface), ifaceRole)), false
}

func describeAddr(a netip.Addr, iface, role string) string {
	addr := "no address"
	if a.IsValid() {
		addr = a.String()
	}
	return fmt.Sprintf("%s (%s interface %s)", addr, role, iface)
}

func (m *Model) termMatches(t Term, a netip.Addr, iface int) bool {
	switch t.Kind {
	case TermAny:
		return true
	case TermInterface:
		return iface >= 0 && iface < len(m.Interfaces) && m.Interfaces[iface].Name == t.Name
	case TermInterfaceGroup:
		return iface >= 0 && iface < len(m.Interfaces) && m.Interfaces[iface].Group == t.Group
	}
	return m.addrInTerm(t, a, 0)
}

// addrInTerm reports whether a belongs to an address term. Nested groups deeper
// than the number of groups are a cycle, which Compile refuses anyway.
func (m *Model) addrInTerm(t Term, a netip.Addr, depth int) bool {
	if !a.IsValid() || depth > len(m.AddressGroups) {
		return false
	}
	switch t.Kind {
	case TermHost, TermPrefix:
		return t.Prefix.Contains(a)
	case TermRange:
		return a.BitLen() == t.From.BitLen() && t.From.Compare(a) <= 0 && a.Compare(t.To) <= 0
	case TermAddressGroup:
		g := slices.IndexFunc(m.AddressGroups, func(g AddressGroup) bool { return g.Name == t.Name })
		if g < 0 {
			return false
		}
		for _, it := range m.AddressGroups[g].Items {
			if it.Enabled && m.addrInTerm(it.Addr, a, depth+1) {
				return true
			}
		}
	}
	return false
}

// explainServices evaluates a rule's services against the query's protocol and
// destination port or ICMP type.
func (m *Model) explainServices(names []string, q *Query) (string, bool) {
	if len(names) == 0 {
		return "any (empty)", true
	}
	for _, n := range names {
		k := slices.IndexFunc(m.Services, func(s Service) bool { return s.Name == n })
		if k >= 0 && serviceMatches(&m.Services[k], q) {
			return fmt.Sprintf("%q matches %s", n, describeService(q)), true
		}
	}
	quoted := make([]string, len(names))
	for k, n := range names {
		quoted[k] = fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf("%s does not match %s", strings.Join(quoted, ", "), describeService(q)), false
}

func describeService(q *Query) string {
	switch q.Proto {
	case uint8(ProtoTCP):
		return fmt.Sprintf("tcp port %d", q.DstPort)
	case uint8(ProtoUDP):
		return fmt.Sprintf("udp port %d", q.DstPort)
	case uint8(ProtoICMP):
		return fmt.Sprintf("icmp type %d", q.ICMPType)
	case uint8(ProtoICMPv6):
		return fmt.Sprintf("icmpv6 type %d", q.ICMPType)
	}
	return fmt.Sprintf("protocol %d", q.Proto)
}

func serviceMatches(s *Service, q *Query) bool {
	in := func(rs []PortRange, v uint16) bool {
		if len(rs) == 0 {
			return true
		}
		for _, r := range rs {
			if r.Lo <= v && v <= r.Hi {
				return true
			}
		}
		return false
	}
	p := Protocol(q.Proto)
	switch s.Protocol {
	case ProtoAny:
		return true
	case ProtoTCPUDP:
		return (p == ProtoTCP || p == ProtoUDP) && in(s.Ports, q.DstPort)
	case ProtoTCP, ProtoUDP:
		return p == s.Protocol && in(s.Ports, q.DstPort)
	case ProtoICMP, ProtoICMPv6:
		return p == s.Protocol && in(s.ICMPTypes, uint16(q.ICMPType))
	}
	return p == s.Protocol
}
