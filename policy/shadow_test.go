package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func shadowsOf(t *testing.T, m *Model) map[int][]int {
	t.Helper()
	rs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	sh, complete := rs.Shadowed()
	if !complete {
		t.Fatal("analysis incomplete")
	}
	out := map[int][]int{}
	for _, s := range sh {
		out[s.Rule] = s.By
	}
	return out
}

func TestShadowedStoryHasNone(t *testing.T) {
	if sh := shadowsOf(t, storyModel()); len(sh) != 0 {
		t.Errorf("story model: shadowed %v", sh)
	}
}

func TestShadowed(t *testing.T) {
	tcp := func(name string, ports ...uint16) Service {
		s := Service{Name: name, Protocol: ProtoTCP}
		for _, p := range ports {
			s.Ports = append(s.Ports, PortRange{p, p})
		}
		return s
	}
	base := func(rules ...Rule) *Model {
		for i := range rules {
			rules[i].Enabled = !(rules[i].Description == "disabled")
			rules[i].Name = fmt.Sprint("r", i)
		}
		return &Model{
			Interfaces: []Interface{
				{Name: "LAN", Group: Trusted, Addresses: []netip.Prefix{pfx("10.1.0.1/24")}},
				{Name: "DMZ", Group: Other, Addresses: []netip.Prefix{pfx("10.2.0.1/24")}},
			},
			AddressGroups: []AddressGroup{
				{Name: "Empty"},
				{Name: "Halves", Items: []AddrItem{{Enabled: true, Addr: PrefixTerm(pfx("10.0.0.0/9"))}}},
			},
			Services: []Service{tcp("HTTP", 80), tcp("HTTPS", 443), tcp("Web", 80, 443), {Name: "Any", Protocol: ProtoAny}},
			Rules:    rules, DefaultAction: Drop,
		}
	}
	p := func(s string) []Term { return []Term{PrefixTerm(pfx(s))} }
	tests := []struct {
		name string
		m    *Model
		want map[int][]int
	}{
		{"after permit-all", base(Rule{Action: Permit}, Rule{Source: p("10.0.0.0/8"), Action: Deny}),
			map[int][]int{1: {0}}},
		{"covered by two halves together", base(
			Rule{Source: p("10.0.0.0/9"), Action: Permit},
			Rule{Source: p("10.128.0.0/9"), Action: Drop},
			Rule{Source: p("10.0.0.0/8"), Action: Deny}),
			map[int][]int{2: {0, 1}}},
		{"partly covered is reachable", base(Rule{Source: p("10.0.0.0/9"), Action: Permit}, Rule{Source: p("10.0.0.0/8"), Action: Deny}),
			map[int][]int{}},
		{"a disabled rule shadows nothing", base(Rule{Action: Permit, Description: "disabled"}, Rule{Source: p("10.0.0.0/8"), Action: Deny}),
			map[int][]int{}},
		{"empty group matches nothing", base(Rule{Source: []Term{GroupRef("Empty")}, Action: Permit}),
			map[int][]int{0: nil}},
		{"services: one of two covered", base(
			Rule{Services: []string{"Web"}, Action: Permit},
			Rule{Services: []string{"HTTP"}, Action: Deny},
			Rule{Services: []string{"HTTPS", "Any"}, Action: Deny}),
			map[int][]int{1: {0}}},
		{"an interface covered by any", base(Rule{Action: Permit}, Rule{Source: []Term{Iface("LAN")}, Action: Drop}),
			map[int][]int{1: {0}}},
		{"an address is not its interface", base(
			Rule{Source: p("10.1.0.0/24"), Action: Permit},
			Rule{Source: []Term{Iface("LAN")}, Action: Drop}),
			map[int][]int{}},
		{"group and prefix alike", base(Rule{Source: []Term{GroupRef("Halves")}, Action: Permit}, Rule{Source: p("10.64.0.0/10"), Action: Permit}),
			map[int][]int{1: {0}}},
		{"IPv6 not covered by IPv4", base(Rule{Source: p("0.0.0.0/0"), Action: Permit}, Rule{Source: p("2001:db8::/32"), Action: Drop}),
			map[int][]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := shadowsOf(t, tc.m)
			if len(got) != len(tc.want) {
				t.Fatalf("shadowed %v, want %v", got, tc.want)
			}
			for r, by := range tc.want {
				g, ok := got[r]
				if !ok || !slices.Equal(g, by) {
					t.Errorf("rule %d: shadowed by %v (%v), want %v", r, g, ok, by)
				}
			}
		})
	}
}

// On random rule sets, no query the matcher is asked ever ends on a rule reported
// as shadowed.
func TestShadowedAgreesWithMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nets := []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.128.0.0/9", "10.0.0.0/9", "192.168.0.0/16", "0.0.0.0/0"}
	for round := range 200 {
		m := &Model{
			Interfaces: []Interface{{Name: "A", Addresses: []netip.Prefix{pfx("10.1.0.1/16")}}, {Name: "B", Addresses: []netip.Prefix{pfx("192.168.0.1/16")}}},
			Services: []Service{{Name: "80", Protocol: ProtoTCP, Ports: []PortRange{{80, 80}}}, {Name: "1-1000", Protocol: ProtoTCP, Ports: []PortRange{{1, 1000}}},
				{Name: "udp", Protocol: ProtoUDP}, {Name: "any", Protocol: ProtoAny}},
			DefaultAction: Drop,
		}
		term := func() []Term {
			switch rng.IntN(4) {
			case 0:
				return nil
			case 1:
				return []Term{Iface([]string{"A", "B"}[rng.IntN(2)])}
			}
			return []Term{PrefixTerm(pfx(nets[rng.IntN(len(nets))]))}
		}
		for i := range 2 + rng.IntN(8) {
			r := Rule{Name: fmt.Sprint(i), Enabled: rng.IntN(6) > 0, Source: term(), Destination: term(), Action: Action(rng.IntN(3))}
			if rng.IntN(3) > 0 {
				r.Services = []string{m.Services[rng.IntN(len(m.Services))].Name}
			}
			m.Rules = append(m.Rules, r)
		}
		sh := shadowsOf(t, m)
		rs, _ := Compile(m)
		addrs := []string{"10.1.2.3", "10.1.9.9", "10.200.0.1", "10.5.0.1", "192.168.3.4", "8.8.8.8"}
		for range 400 {
			q := Query{Src: ip(addrs[rng.IntN(len(addrs))]), Dst: ip(addrs[rng.IntN(len(addrs))]),
				Proto: []uint8{6, 17, 1}[rng.IntN(3)], DstPort: []uint16{80, 443, 5000}[rng.IntN(3)],
				InIface: rng.IntN(3) - 1, OutIface: rng.IntN(3) - 1}
			if i, _ := rs.Match(&q); i >= 0 {
				if _, bad := sh[i]; bad {
					t.Fatalf("round %d: rule %d reported shadowed by %v, but %+v matches it first\n%+v", round, i, sh[i], q, m.Rules)
				}
			}
		}
	}
}
