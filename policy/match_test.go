package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

var (
	ip  = netip.MustParseAddr
	pfx = netip.MustParsePrefix
)

// storyModel is the data-centre of the first incident: web servers in a DMZ calling
// Tomcat servers in another subnet, plus a LAN and the Internet.
func storyModel() *Model {
	return &Model{
		Interfaces: []Interface{
			{Name: "WAN", Group: Internet, Device: "eth0", Addresses: []netip.Prefix{pfx("203.0.113.2/24")}},
			{Name: "DMZ", Group: Other, Device: "eth1", Addresses: []netip.Prefix{pfx("10.2.0.1/24")}},
			{Name: "Tomcat", Group: Trusted, Device: "eth2", Addresses: []netip.Prefix{pfx("10.3.0.1/24")}, Networks: []netip.Prefix{pfx("10.30.0.0/16")}},
			{Name: "LAN", Group: Trusted, Device: "eth3", Addresses: []netip.Prefix{pfx("192.168.1.1/24"), pfx("2001:db8:1::1/64")}},
		},
		AddressGroups: []AddressGroup{
			{Name: "WebServers", Items: []AddrItem{
				{Enabled: true, Addr: Host(ip("10.2.0.10"))},
				{Enabled: true, Addr: Host(ip("10.2.0.11"))},
				{Enabled: true, Addr: Range(ip("10.2.0.20"), ip("10.2.0.29"))},
			}},
			{Name: "TomcatServers", Items: []AddrItem{{Enabled: true, Addr: PrefixTerm(pfx("10.3.0.0/24"))}}},
			{Name: "Internal", Items: []AddrItem{
				{Enabled: true, Addr: GroupRef("WebServers")},
				{Enabled: true, Addr: GroupRef("TomcatServers")},
				{Enabled: true, Addr: PrefixTerm(pfx("2001:db8:1::/64"))},
				{Enabled: false, Addr: Host(ip("8.8.8.8"))},
			}},
		},
		Services: []Service{
			{Name: "HTTP", Protocol: ProtoTCP, Ports: []PortRange{{80, 80}, {443, 443}}},
			{Name: "Tomcat", Protocol: ProtoTCP, Ports: []PortRange{{8009, 8009}, {8080, 8089}}},
			{Name: "DNS", Protocol: ProtoTCPUDP, Ports: []PortRange{{53, 53}}},
			{Name: "Ping", Protocol: ProtoICMP, ICMPTypes: []PortRange{{8, 8}}},
			{Name: "Ping6", Protocol: ProtoICMPv6, ICMPTypes: []PortRange{{128, 128}}},
			{Name: "GRE", Protocol: 47},
		},
		Rules: []Rule{
			{Name: "Web to Tomcat", Enabled: true, Source: []Term{GroupRef("WebServers")}, Destination: []Term{GroupRef("TomcatServers")}, Services: []string{"Tomcat"}, Action: Permit},
			{Name: "Disabled catch-all", Enabled: false, Action: Drop},
			{Name: "Internet to web", Enabled: true, Source: []Term{IfGroup(Internet)}, Destination: []Term{GroupRef("WebServers")}, Services: []string{"HTTP"}, Action: Permit},
			{Name: "LAN DNS", Enabled: true, Source: []Term{Iface("LAN")}, Destination: []Term{Host(ip("10.3.0.53"))}, Services: []string{"DNS"}, Action: Permit},
			{Name: "Ping", Enabled: true, Services: []string{"Ping", "Ping6"}, Action: Permit},
			{Name: "Drop GRE", Enabled: true, Source: []Term{{Kind: TermAny}}, Services: []string{"GRE"}, Action: Drop},
			{Name: "LAN out", Enabled: true, Source: []Term{Iface("LAN")}, Destination: []Term{IfGroup(Internet)}, Action: Permit},
			{Name: "Tomcat to DMZ", Enabled: true, Source: []Term{PrefixTerm(pfx("10.3.0.0/24"))}, Destination: []Term{Iface("DMZ")}, Action: Deny},
			{Name: "Internal v6", Enabled: true, Source: []Term{GroupRef("Internal")}, Destination: []Term{GroupRef("Internal")}, Action: Permit},
		},
		DefaultAction: Drop,
	}
}

const (
	wan, dmz, tomcat, lan = 0, 1, 2, 3
	tcp, udp, icmp, icmp6 = 6, 17, 1, 58
)

func TestMatchStory(t *testing.T) {
	m := storyModel()
	rs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		q      Query
		rule   int
		action Action
	}{
		{"web host to tomcat 8080", Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat}, 0, Permit},
		{"web range to tomcat 8009", Query{Src: ip("10.2.0.25"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8009, InIface: dmz, OutIface: tomcat}, 0, Permit},
		{"range end inclusive", Query{Src: ip("10.2.0.29"), Dst: ip("10.3.0.255"), Proto: tcp, DstPort: 8089, InIface: dmz, OutIface: tomcat}, 0, Permit},
		{"outside web group", Query{Src: ip("10.2.0.30"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat}, -1, Drop},
		{"port outside service falls to Internal", Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8090, InIface: dmz, OutIface: tomcat}, 8, Permit},
		{"udp is not tcp service", Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: udp, DstPort: 8080, InIface: dmz, OutIface: tomcat}, 8, Permit},
		{"web to outside tomcat subnet", Query{Src: ip("10.2.0.10"), Dst: ip("10.30.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat}, -1, Drop},
		{"internet to web https", Query{Src: ip("198.51.100.7"), Dst: ip("10.2.0.11"), Proto: tcp, DstPort: 443, InIface: wan, OutIface: dmz}, 2, Permit},
		{"unknown ingress matches no ifgroup", Query{Src: ip("198.51.100.7"), Dst: ip("10.2.0.11"), Proto: tcp, DstPort: 443, InIface: -1, OutIface: dmz}, -1, Drop},
		{"out of range ingress index", Query{Src: ip("198.51.100.7"), Dst: ip("10.2.0.11"), Proto: tcp, DstPort: 443, InIface: 99, OutIface: dmz}, -1, Drop},
		{"lan dns udp", Query{Src: ip("192.168.1.5"), Dst: ip("10.3.0.53"), Proto: udp, DstPort: 53, InIface: lan, OutIface: tomcat}, 3, Permit},
		{"lan dns tcp", Query{Src: ip("192.168.1.5"), Dst: ip("10.3.0.53"), Proto: tcp, DstPort: 53, InIface: lan, OutIface: tomcat}, 3, Permit},
		{"lan tcp 54 to tomcat", Query{Src: ip("192.168.1.5"), Dst: ip("10.3.0.53"), Proto: tcp, DstPort: 54, InIface: lan, OutIface: tomcat}, -1, Drop},
		{"ping echo request", Query{Src: ip("192.168.1.5"), Dst: ip("8.8.8.8"), Proto: icmp, ICMPType: 8, InIface: lan, OutIface: wan}, 4, Permit},
		{"echo reply falls to LAN out", Query{Src: ip("192.168.1.5"), Dst: ip("8.8.8.8"), Proto: icmp, ICMPType: 0, InIface: lan, OutIface: wan}, 6, Permit},
		{"ping6", Query{Src: ip("2001:db8:1::5"), Dst: ip("2001:db8:2::1"), Proto: icmp6, ICMPType: 128, InIface: lan, OutIface: wan}, 4, Permit},
		{"icmpv6 type 8 is not ping6", Query{Src: ip("2001:db8:9::5"), Dst: ip("2001:db8:2::1"), Proto: icmp6, ICMPType: 8, InIface: wan, OutIface: lan}, -1, Drop},
		{"gre from anywhere", Query{Src: ip("198.51.100.1"), Dst: ip("10.2.0.10"), Proto: 47, InIface: wan, OutIface: dmz}, 5, Drop},
		{"tomcat to dmz denied", Query{Src: ip("10.3.0.5"), Dst: ip("10.2.0.10"), Proto: tcp, DstPort: 22, InIface: tomcat, OutIface: dmz}, 7, Deny},
		{"tomcat to dmz, egress unknown", Query{Src: ip("10.3.0.5"), Dst: ip("10.2.0.10"), Proto: tcp, DstPort: 22, InIface: tomcat, OutIface: -1}, 8, Permit},
		{"nested group v6", Query{Src: ip("2001:db8:1::7"), Dst: ip("2001:db8:1::8"), Proto: udp, DstPort: 9, InIface: lan, OutIface: lan}, 8, Permit},
		{"disabled group item", Query{Src: ip("8.8.8.8"), Dst: ip("10.3.0.9"), Proto: udp, DstPort: 9, InIface: wan, OutIface: tomcat}, -1, Drop},
		{"mapped source is IPv4", Query{Src: ip("::ffff:10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat}, 0, Permit},
		{"invalid addresses match only any", Query{Proto: 47, InIface: -1, OutIface: -1}, 5, Drop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, a := rs.Match(&tt.q)
			if rule != tt.rule || a != tt.action {
				t.Errorf("Match = %d %v, want %d %v", rule, a, tt.rule, tt.action)
			}
			if rr, ra := refMatch(m, &tt.q); rr != rule || ra != a {
				t.Errorf("reference matcher says %d %v", rr, ra)
			}
		})
	}
	if got := rs.Rule(7).Name; got != "Tomcat to DMZ" {
		t.Errorf("Rule(7).Name = %q", got)
	}
}

func TestMatchNoRules(t *testing.T) {
	for _, def := range []Action{Permit, Deny, Drop} {
		rs, err := Compile(&Model{DefaultAction: def})
		if err != nil {
			t.Fatal(err)
		}
		q := Query{Src: ip("1.2.3.4"), Dst: ip("5.6.7.8"), Proto: tcp, DstPort: 80, InIface: -1, OutIface: -1}
		if r, a := rs.Match(&q); r != -1 || a != def {
			t.Errorf("default %v: Match = %d %v", def, r, a)
		}
	}
}

// TestMatchRuleOrderAcrossWords checks first-match order when matching rules sit in
// different 64-bit words and the early words hold only near-misses.
func TestMatchRuleOrderAcrossWords(t *testing.T) {
	m := &Model{Services: []Service{{Name: "SSH", Protocol: ProtoTCP, Ports: []PortRange{{22, 22}}}}}
	for i := 0; i < 200; i++ {
		r := Rule{Name: fmt.Sprint("r", i), Enabled: true, Action: Drop}
		switch {
		case i < 130: // same source, other destination
			r.Source = []Term{Host(ip("10.0.0.1"))}
			r.Destination = []Term{Host(netip.AddrFrom4([4]byte{10, 9, byte(i), 1}))}
		case i == 150:
			r.Source = []Term{PrefixTerm(pfx("10.0.0.0/8"))}
			r.Services = []string{"SSH"}
			r.Action = Permit
		default:
			r.Destination = []Term{Host(ip("10.0.0.2"))}
		}
		m.Rules = append(m.Rules, r)
	}
	rs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Src: ip("10.0.0.1"), Dst: ip("192.0.2.1"), Proto: tcp, DstPort: 22, InIface: -1, OutIface: -1}
	if r, a := rs.Match(&q); r != 150 || a != Permit {
		t.Errorf("Match = %d %v, want 150 Permit", r, a)
	}
	q.Dst = ip("10.9.129.1")
	if r, _ := rs.Match(&q); r != 129 {
		t.Errorf("Match = %d, want 129", r)
	}
	q.Dst = ip("10.0.0.2")
	if r, _ := rs.Match(&q); r != 130 {
		t.Errorf("Match = %d, want 130", r)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	rs, err := Compile(storyModel())
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat}
	q6 := Query{Src: ip("2001:db8:9::5"), Dst: ip("2001:db8:2::1"), Proto: icmp6, ICMPType: 8, InIface: wan, OutIface: lan}
	allocs := testing.AllocsPerRun(1000, func() {
		rs.Match(&q)
		rs.Match(&q6)
		rs.IfaceForAddr(q.Src)
		rs.SpoofOK(dmz, q.Src)
		rs.IfaceByName("LAN")
		rs.IfaceByDevice("eth2")
	})
	if allocs != 0 {
		t.Errorf("allocations per run = %v, want 0", allocs)
	}
}

func TestCompileErrors(t *testing.T) {
	m := storyModel()
	m.Rules = append(m.Rules,
		Rule{Name: "bad refs", Enabled: false, Source: []Term{GroupRef("NoSuchGroup"), Iface("eth9")}, Services: []string{"HTTPS"}},
		Rule{Name: "bad range", Enabled: true, Destination: []Term{Range(ip("10.0.0.9"), ip("10.0.0.1"))}},
		Rule{Name: "mixed range", Enabled: true, Destination: []Term{Range(ip("10.0.0.1"), ip("::1"))}},
		Rule{Name: "bad action", Enabled: true, Action: Action(7)},
	)
	m.AddressGroups = append(m.AddressGroups,
		AddressGroup{Name: "A", Items: []AddrItem{{Enabled: true, Addr: GroupRef("B")}}},
		AddressGroup{Name: "B", Items: []AddrItem{{Enabled: true, Addr: GroupRef("A")}}},
		AddressGroup{Name: "WebServers"},
	)
	m.Services = append(m.Services,
		Service{Name: "Ports on GRE", Protocol: 47, Ports: []PortRange{{1, 2}}},
		Service{Name: "Reversed", Protocol: ProtoUDP, Ports: []PortRange{{9, 1}}},
	)
	m.Interfaces = append(m.Interfaces, Interface{Name: "LAN2", Device: "eth3"})
	_, err := Compile(m)
	if err == nil {
		t.Fatal("Compile succeeded")
	}
	want := []string{
		`no address group "NoSuchGroup"`,
		`no interface "eth9"`,
		`no service "HTTPS"`,
		`range 10.0.0.9-10.0.0.1 ends before it starts`,
		`range 10.0.0.1-::1 mixes IPv4 and IPv6`,
		`action Action(7) is not Permit, Deny or Drop`,
		`contains itself`,
		`address group "WebServers" defined twice`,
		`service "Ports on GRE": ports given for a protocol without ports`,
		`service "Reversed": port range 9-1 ends before it starts`,
		`interfaces "LAN" and "LAN2" share device "eth3"`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q; got:\n%v", w, err)
		}
	}
}

// TestMatchAgreesWithReference compiles random models over a small address and port
// universe (so terms overlap a lot) and compares every answer with refMatch.
func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 600)
	for iter := 0; iter < 300; iter++ {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		checkAgainstReference(t, buf)
		if t.Failed() {
			t.Fatalf("iteration %d", iter)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("rules over a small universe: overlapping prefixes, ranges and ports"))
	f.Add(make([]byte, 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstReference(t, data)
	})
}

func checkAgainstReference(t *testing.T, data []byte) {
	g := &gen{b: data}
	m := g.model()
	rs, err := Compile(m)
	if err != nil {
		t.Fatalf("generated model does not compile: %v", err)
	}
	for k := 0; k < 40; k++ {
		q := g.query(len(m.Interfaces))
		r1, a1 := rs.Match(&q)
		r2, a2 := refMatch(m, &q)
		if r1 != r2 || a1 != a2 {
			t.Fatalf("query %+v: compiled %d %v, reference %d %v\nmodel %+v", q, r1, a1, r2, a2, m)
		}
		// IfaceForAddr must be a longest-prefix owner or the catch-all.
		if j := rs.IfaceForAddr(q.Src); j < -1 || j >= len(m.Interfaces) {
			t.Fatalf("IfaceForAddr(%v) = %d", q.Src, j)
		}
	}
}

// gen turns bytes into a valid model; running out of bytes yields zeros.
type gen struct {
	b []byte
	i int
}

func (g *gen) byte() byte {
	if g.i >= len(g.b) {
		g.i++
		return 0
	}
	g.i++
	return g.b[g.i-1]
}

func (g *gen) n(k int) int { return int(g.byte()) % k }

func (g *gen) addr() netip.Addr {
	if g.n(4) == 0 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(g.n(4)), 15: g.byte()})
	}
	return netip.AddrFrom4([4]byte{10, 0, byte(g.n(4)), g.byte()})
}

func (g *gen) addrTerm(groups int) Term {
	a := g.addr()
	switch g.n(4) {
	case 0:
		return Host(a)
	case 1:
		bits := a.BitLen() - g.n(11)
		return PrefixTerm(netip.PrefixFrom(a, bits).Masked())
	case 2:
		b := g.addr()
		if a.Is4() != b.Is4() {
			return Host(a)
		}
		if b.Less(a) {
			a, b = b, a
		}
		return Range(a, b)
	}
	if groups == 0 {
		return Host(a)
	}
	return GroupRef(fmt.Sprint("g", g.n(groups)))
}

func (g *gen) ports() []PortRange {
	var out []PortRange
	for k := g.n(3); k > 0; k-- {
		lo := uint16(g.n(40))
		out = append(out, PortRange{lo, lo + uint16(g.n(10))})
	}
	return out
}

func (g *gen) model() *Model {
	m := &Model{DefaultAction: Action(g.n(3))}
	for j := 0; j < 3; j++ {
		ifc := Interface{Name: fmt.Sprint("if", j), Group: IfaceGroup(g.n(int(numGroups)))}
		for k := g.n(3); k > 0; k-- {
			a := g.addr()
			ifc.Addresses = append(ifc.Addresses, netip.PrefixFrom(a, a.BitLen()-g.n(12)))
		}
		m.Interfaces = append(m.Interfaces, ifc)
	}
	for j := g.n(4); j > 0; j-- {
		grp := AddressGroup{Name: fmt.Sprint("g", len(m.AddressGroups))}
		for k := g.n(4); k > 0; k-- {
			// Nested references only to earlier groups: no cycles.
			grp.Items = append(grp.Items, AddrItem{Enabled: g.n(5) > 0, Addr: g.addrTerm(len(m.AddressGroups))})
		}
		m.AddressGroups = append(m.AddressGroups, grp)
	}
	protos := []Protocol{ProtoAny, ProtoTCPUDP, ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, 47}
	for j := g.n(6); j > 0; j-- {
		s := Service{Name: fmt.Sprint("s", len(m.Services)), Protocol: protos[g.n(len(protos))]}
		switch s.Protocol {
		case ProtoTCP, ProtoUDP, ProtoTCPUDP:
			s.Ports = g.ports()
		case ProtoICMP, ProtoICMPv6:
			s.ICMPTypes = g.ports()
		}
		m.Services = append(m.Services, s)
	}
	side := func() []Term {
		var ts []Term
		for k := g.n(4); k > 0; k-- {
			switch g.n(8) {
			case 0:
				ts = append(ts, Term{Kind: TermAny})
			case 1:
				ts = append(ts, Iface(fmt.Sprint("if", g.n(3))))
			case 2:
				ts = append(ts, IfGroup(IfaceGroup(g.n(int(numGroups)))))
			default:
				ts = append(ts, g.addrTerm(len(m.AddressGroups)))
			}
		}
		return ts
	}
	for j := g.n(90); j > 0; j-- {
		r := Rule{Name: fmt.Sprint("r", len(m.Rules)), Enabled: g.n(6) > 0, Action: Action(g.n(3))}
		r.Source, r.Destination = side(), side()
		if len(m.Services) > 0 {
			for k := g.n(3); k > 0; k-- {
				r.Services = append(r.Services, m.Services[g.n(len(m.Services))].Name)
			}
		}
		m.Rules = append(m.Rules, r)
	}
	return m
}

func (g *gen) query(nifaces int) Query {
	q := Query{Src: g.addr(), InIface: g.n(nifaces+1) - 1, OutIface: g.n(nifaces+1) - 1}
	q.Dst = g.addr()
	if q.Src.Is4() != q.Dst.Is4() {
		q.Dst = q.Src
	}
	q.Proto = []uint8{tcp, udp, icmp, icmp6, 47, 50}[g.n(6)]
	q.DstPort = uint16(g.n(52))
	q.SrcPort = uint16(g.n(52))
	q.ICMPType = uint8(g.n(52))
	return q
}
