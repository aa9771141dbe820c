package policy

import (
	"net/netip"
	"slices"
)

// refMatch is the obvious linear matcher, written straight from the documented
// semantics. The compiled Ruleset must agree with it on every query.
func refMatch(m *Model, q *Query) (int, Action) {
	for i := range m.Rules {
		r := &m.Rules[i]
		if !r.Enabled {
			continue
		}
		if refSide(m, r.Source, q.Src, q.InIface) && refSide(m, r.Destination, q.Dst, q.OutIface) && refServices(m, r.Services, q) {
			return i, r.Action
		}
	}
	return -1, m.DefaultAction
}

func refSide(m *Model, terms []Term, a netip.Addr, iface int) bool {
	if len(terms) == 0 {
		return true
	}
	a = a.Unmap()
	for _, t := range terms {
		switch t.Kind {
		case TermAny:
			return true
		case TermInterface:
			if iface >= 0 && iface < len(m.Interfaces) && m.Interfaces[iface].Name == t.Name {
				return true
			}
		case TermInterfaceGroup:
			if iface >= 0 && iface < len(m.Interfaces) && m.Interfaces[iface].Group == t.Group {
				return true
			}
		default:
			if refAddr(m, t, a, 0) {
				return true
			}
		}
	}
	return false
}

func refAddr(m *Model, t Term, a netip.Addr, depth int) bool {
	if !a.IsValid() || depth > 64 {
		return false
	}
	switch t.Kind {
	case TermHost, TermPrefix:
		return t.Prefix.Contains(a)
	case TermRange:
		return a.Is4() == t.From.Is4() && t.From.Compare(a) <= 0 && a.Compare(t.To) <= 0
	case TermAddressGroup:
		for _, g := range m.AddressGroups {
			if g.Name != t.Name {
				continue
			}
			for _, it := range g.Items {
				if it.Enabled && refAddr(m, it.Addr, a, depth+1) {
					return true
				}
			}
		}
	}
	return false
}

func refServices(m *Model, names []string, q *Query) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		i := slices.IndexFunc(m.Services, func(s Service) bool { return s.Name == n })
		if i >= 0 && refService(&m.Services[i], q) {
			return true
		}
	}
	return false
}

func refService(s *Service, q *Query) bool {
	inRanges := func(rs []PortRange, v uint16) bool {
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
	p := int(q.Proto)
	switch s.Protocol {
	case ProtoAny:
		return true
	case ProtoTCPUDP:
		return (p == 6 || p == 17) && inRanges(s.Ports, q.DstPort)
	case ProtoTCP, ProtoUDP:
		return p == int(s.Protocol) && inRanges(s.Ports, q.DstPort)
	case ProtoICMP, ProtoICMPv6:
		return p == int(s.Protocol) && inRanges(s.ICMPTypes, uint16(q.ICMPType))
	}
	return p == int(s.Protocol)
}
