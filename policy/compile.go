package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Ruleset is a compiled Model. It is immutable after Compile: every method is safe
// for concurrent use, and the per-connection methods do not allocate.
//
// Matching is bit-vector classification (Lakshman and Stiliadis): each dimension
// (source address, destination address, protocol+port, ingress and egress
// interface) is cut into elementary intervals, each holding the bitset of rules
// that match there. A query binary-searches every dimension and ANDs the rows; the
// lowest set bit is the first matching rule. A miss costs a few binary searches and
// a scan of the row summaries, not a walk over the rules.
type Ruleset struct {
	rules         []Rule
	defaultAction Action
	model         Model // what it was compiled from, for Explain

	rows            *rowStore
	src4, src6      intervals
	dst4, dst6      intervals
	anySrc, anyDst  uint32   // rows for an invalid address: rules with "any"
	inRows, outRows []uint32 // index iface+1; [0] is the unknown interface
	svcTable        [256]uint16
	svc             []intervals
	ifaces          ifaceIndex
	nEnabled        int
}

// Compile checks m and builds its Ruleset. Every problem found is reported (joined
// with errors.Join), not only the first.
func Compile(m *Model) (*Ruleset, error) {
	c := compiler{m: m, groupState: map[string]int{}, groupSpans: map[string][]span{}}
	rs := c.compile()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return rs, nil
}

type compiler struct {
	m          *Model
	errs       []error
	ifaceIdx   map[string]int
	groups     map[string]*AddressGroup
	groupState map[string]int // 1 while resolving (cycle check), 2 when done
	groupSpans map[string][]span
	services   map[string]*Service
}

func (c *compiler) errorf(format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, a...))
}

func (c *compiler) compile() *Ruleset {
	m := c.m
	rs := &Ruleset{defaultAction: m.DefaultAction}
	if m.DefaultAction > Drop {
		c.errorf("default action %v is not Permit, Deny or Drop", m.DefaultAction)
	}
	rs.ifaces = c.buildInterfaces(m.Interfaces)
	c.ifaceIdx = rs.ifaces.byName
	c.indexGroups()
	c.indexServices()

	n := len(m.Rules)
	rs.rules = make([]Rule, n)
	rows := newRowStore(n)
	rs.rows = rows
	var src4, src6, dst4, dst6 []span
	var anySvc []span
	protoSpans := map[uint8][]span{}
	inSets := make([][]int, len(m.Interfaces))
	outSets := make([][]int, len(m.Interfaces))
	anySrcRow, anyDstRow := make([]uint64, rows.words), make([]uint64, rows.words)
	idleTimeouts := map[time.Duration]bool{}
	for i := range m.Rules {
		r := &m.Rules[i]
		rs.rules[i] = cloneRule(r)
		where := fmt.Sprintf("rule %d %q", i+1, r.Name)
		if r.Action > Drop {
			c.errorf("%s: action %v is not Permit, Deny or Drop", where, r.Action)
		}
		c.checkStateOptions(where, r, idleTimeouts)
		s4, s6, sIf, sAny := c.addressSide(where+" source", r.Source, i)
		d4, d6, dIf, dAny := c.addressSide(where+" destination", r.Destination, i)
		pv, svcAny := c.serviceSide(where, r.Services, i)
		if !r.Enabled {
			continue
		}
		rs.nEnabled++
		src4, src6, dst4, dst6 = append(src4, s4...), append(src6, s6...), append(dst4, d4...), append(dst6, d6...)
		for _, j := range sIf {
			inSets[j] = append(inSets[j], i)
		}
		for _, j := range dIf {
			outSets[j] = append(outSets[j], i)
		}
		if sAny {
			anySrcRow[i/64] |= 1 << (i % 64)
		}
		if dAny {
			anyDstRow[i/64] |= 1 << (i % 64)
		}
		if svcAny {
			anySvc = append(anySvc, span{u128{}, maxPort, i})
		}
		for p, ss := range pv {
			protoSpans[p] = append(protoSpans[p], ss...)
		}
	}
	if len(c.errs) > 0 {
		return nil
	}
	rs.src4 = rows.ruleRows(src4, maxV4, n)
	rs.src6 = rows.ruleRows(src6, maxV6, n)
	rs.dst4 = rows.ruleRows(dst4, maxV4, n)
	rs.dst6 = rows.ruleRows(dst6, maxV6, n)
	rs.anySrc, rs.anyDst = rows.intern(anySrcRow), rows.intern(anyDstRow)
	rs.inRows = ifaceRows(rows, inSets)
	rs.outRows = ifaceRows(rows, outSets)

	// Table 0 holds the rules that match every protocol; each protocol some service
	// names gets its own table with those rules plus its own.
	rs.svc = append(rs.svc, rows.ruleRows(anySvc, maxPort, n))
	protos := make([]int, 0, len(protoSpans))
	for p := range protoSpans {
		protos = append(protos, int(p))
	}
	slices.Sort(protos)
	for _, p := range protos {
		rs.svcTable[p] = uint16(len(rs.svc))
		all := append(slices.Clip(anySvc), protoSpans[uint8(p)]...)
		rs.svc = append(rs.svc, rows.ruleRows(all, maxPort, n))
	}
	rows.index = nil // only needed while building
	rs.model = Model{Interfaces: slices.Clone(m.Interfaces), AddressGroups: slices.Clone(m.AddressGroups),
		Services: slices.Clone(m.Services), Rules: rs.rules, DefaultAction: m.DefaultAction}
	return rs
}

// checkStateOptions checks rule r's state options; idle collects the distinct
// IdleTimeout values seen so far.
func (c *compiler) checkStateOptions(where string, r *Rule, idle map[time.Duration]bool) {
	if r.Handshake > HandshakeLoose {
		c.errorf("%s: handshake option %v is not inherit, strict or loose", where, r.Handshake)
	}
	if r.IdleTimeout < 0 || r.MaxConnectionsPerSource < 0 {
		c.errorf("%s: IdleTimeout and MaxConnectionsPerSource cannot be negative", where)
	}
	if r.IdleTimeout > 0 && !idle[r.IdleTimeout] {
		if len(idle) == MaxIdleTimeouts {
			c.errorf("%s: a %d-th distinct IdleTimeout (%v): at most %d distinct values are allowed", where, len(idle)+1, r.IdleTimeout, MaxIdleTimeouts)
			return
		}
		idle[r.IdleTimeout] = true
	}
}

func ifaceRows(rows *rowStore, sets [][]int) []uint32 {
	out := make([]uint32, len(sets)+1)
	cur := make([]uint64, rows.words)
	for j, rules := range sets {
		clear(cur)
		for _, r := range rules {
			cur[r/64] |= 1 << (r % 64)
		}
		out[j+1] = rows.intern(cur)
	}
	return out
}

func cloneRule(r *Rule) Rule {
	c := *r
	c.Source = slices.Clone(r.Source)
	c.Destination = slices.Clone(r.Destination)
	c.Services = slices.Clone(r.Services)
	return c
}

func (c *compiler) indexGroups() {
	c.groups = map[string]*AddressGroup{}
	for i := range c.m.AddressGroups {
		g := &c.m.AddressGroups[i]
		if err := CheckName(g.Name); err != nil {
			c.errorf("address group %d: %v", i+1, err)
		}
		if _, dup := c.groups[g.Name]; dup {
			c.errorf("address group %q defined twice", g.Name)
		}
		c.groups[g.Name] = g
	}
	for i := range c.m.AddressGroups {
		c.resolveGroup(c.m.AddressGroups[i].Name)
	}
}

// resolveGroup returns the address spans of a group, nested groups expanded. A
// cycle is reported once and resolves to nothing.
func (c *compiler) resolveGroup(name string) []span {
	switch c.groupState[name] {
	case 1:
		c.errorf("address group %q contains itself (through nested groups)", name)
		c.groupState[name] = 2
		return nil
	case 2:
		return c.groupSpans[name]
	}
	g := c.groups[name]
	if g == nil {
		return nil
	}
	c.groupState[name] = 1
	var out []span
	for _, it := range g.Items {
		where := fmt.Sprintf("address group %q item %s", name, FormatTerm(it.Addr))
		if !it.Addr.Kind.isAddressItemKind() {
			c.errorf("%s: an address group item must be host, prefix, range or group", where)
			continue
		}
		if it.Addr.Kind == TermAddressGroup && c.groups[it.Addr.Name] == nil {
			c.errorf("%s: no address group %q", where, it.Addr.Name)
			continue
		}
		spans := c.termSpans(where, it.Addr)
		if it.Enabled {
			out = append(out, spans...)
		}
	}
	if c.groupState[name] == 1 {
		c.groupState[name] = 2
		c.groupSpans[name] = out
	}
	return out
}

// termSpans returns the address spans of an address term (family in span.id: 4 or 6).
func (c *compiler) termSpans(where string, t Term) []span {
	family := func(a netip.Addr) int {
		if a.Is4() {
			return 4
		}
		return 6
	}
	switch t.Kind {
	case TermHost, TermPrefix:
		if !t.Prefix.IsValid() || t.Prefix.Addr().Zone() != "" || t.Prefix.Addr().Is4In6() {
			c.errorf("%s: invalid address or prefix", where)
			return nil
		}
		lo, hi := prefixBounds(t.Prefix)
		return []span{{lo, hi, family(t.Prefix.Addr())}}
	case TermRange:
		if !t.From.IsValid() || !t.To.IsValid() || t.From.Zone() != "" || t.To.Zone() != "" || t.From.Is4In6() || t.To.Is4In6() {
			c.errorf("%s: invalid range", where)
			return nil
		}
		if err := t.checkRange(); err != nil {
			c.errorf("%s: %v", where, err)
			return nil
		}
		return []span{{addrKey(t.From), addrKey(t.To), family(t.From)}}
	case TermAddressGroup:
		return c.resolveGroup(t.Name)
	}
	return nil
}

// addressSide expands one rule side into per-family spans of rule id, the interfaces
// it names, and whether it matches every address.
func (c *compiler) addressSide(where string, terms []Term, rule int) (v4, v6 []span, ifaces []int, any bool) {
	if len(terms) == 0 {
		any = true
	}
	for _, t := range terms {
		switch t.Kind {
		case TermAny:
			any = true
		case TermInterface:
			j, ok := c.ifaceIdx[t.Name]
			if !ok {
				c.errorf("%s: no interface %q", where, t.Name)
				continue
			}
			ifaces = append(ifaces, j)
		case TermInterfaceGroup:
			if t.Group >= numGroups {
				c.errorf("%s: invalid interface group %d", where, t.Group)
			}
			for j, ifc := range c.m.Interfaces {
				if ifc.Group == t.Group {
					ifaces = append(ifaces, j)
				}
			}
		case TermAddressGroup:
			if c.groups[t.Name] == nil {
				c.errorf("%s: no address group %q", where, t.Name)
				continue
			}
			fallthrough
		case TermHost, TermPrefix, TermRange:
			for _, s := range c.termSpans(where, t) {
				s4 := s.id == 4
				s.id = rule
				if s4 {
					v4 = append(v4, s)
				} else {
					v6 = append(v6, s)
				}
			}
		default:
			c.errorf("%s: invalid term kind %d", where, t.Kind)
		}
	}
	if any {
		v4 = append(v4[:0], span{u128{}, maxV4, rule})
		v6 = append(v6[:0], span{u128{}, maxV6, rule})
	}
	return v4, v6, ifaces, any
}

func (c *compiler) indexServices() {
	c.services = map[string]*Service{}
	for i := range c.m.Services {
		s := &c.m.Services[i]
		where := fmt.Sprintf("service %q", s.Name)
		if err := CheckName(s.Name); err != nil {
			c.errorf("service %d: %v", i+1, err)
		}
		if _, dup := c.services[s.Name]; dup {
			c.errorf("%s defined twice", where)
		}
		c.services[s.Name] = s
		if err := s.Check(); err != nil {
			c.errorf("%s: %v", where, err)
		}
	}
}

// Check reports an inconsistent service: a protocol out of range, ports on a
// protocol without ports, ICMP types on a non-ICMP protocol, reversed ranges.
func (s *Service) Check() error {
	if s.Protocol < ProtoTCPUDP || s.Protocol > 255 {
		return fmt.Errorf("protocol %d out of range", s.Protocol)
	}
	hasPorts := s.Protocol == ProtoTCP || s.Protocol == ProtoUDP || s.Protocol == ProtoTCPUDP
	isICMP := s.Protocol == ProtoICMP || s.Protocol == ProtoICMPv6
	if len(s.Ports) > 0 && !hasPorts {
		return errors.New("ports given for a protocol without ports (only tcp, udp, tcp/udp)")
	}
	if len(s.ICMPTypes) > 0 && !isICMP {
		return errors.New("ICMP types given for a protocol other than icmp or icmpv6")
	}
	for _, p := range s.Ports {
		if p.Lo > p.Hi {
			return fmt.Errorf("port range %d-%d ends before it starts", p.Lo, p.Hi)
		}
	}
	for _, p := range s.ICMPTypes {
		if p.Lo > p.Hi || p.Hi > 255 {
			return fmt.Errorf("ICMP type range %d-%d is not within 0-255 in order", p.Lo, p.Hi)
		}
	}
	return nil
}

// serviceSide returns the rule's port (or ICMP type) spans per protocol, or all when
// it matches every service.
func (c *compiler) serviceSide(where string, names []string, rule int) (perProto map[uint8][]span, all bool) {
	if len(names) == 0 {
		return nil, true
	}
	perProto = map[uint8][]span{}
	add := func(p uint8, ranges []PortRange) {
		if len(ranges) == 0 {
			perProto[p] = append(perProto[p], span{u128{}, maxPort, rule})
		}
		for _, r := range ranges {
			perProto[p] = append(perProto[p], span{u128{0, uint64(r.Lo)}, u128{0, uint64(r.Hi)}, rule})
		}
	}
	for _, name := range names {
		s := c.services[name]
		if s == nil {
			c.errorf("%s: no service %q", where, name)
			continue
		}
		switch {
		case s.Protocol == ProtoAny:
			all = true
		case s.Protocol == ProtoTCPUDP:
			add(uint8(ProtoTCP), s.Ports)
			add(uint8(ProtoUDP), s.Ports)
		case s.Protocol == ProtoICMP || s.Protocol == ProtoICMPv6:
			add(uint8(s.Protocol), s.ICMPTypes)
		case s.Protocol >= 0 && s.Protocol <= 255:
			add(uint8(s.Protocol), s.Ports)
		}
	}
	if all {
		return nil, true
	}
	return perProto, false
}
