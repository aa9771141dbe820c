package policy

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchModel builds n rules shaped like a large real policy: each rule allows one
// /24 of clients to one server on one of 50 services, with a few broad rules mixed
// in so rows are not trivially sparse.
func benchModel(n int) *Model {
	m := &Model{DefaultAction: Drop}
	for s := 0; s < 50; s++ {
		m.Services = append(m.Services, Service{Name: fmt.Sprint("svc", s), Protocol: ProtoTCP, Ports: []PortRange{{uint16(1000 + s), uint16(1000 + s)}}})
	}
	for i := 0; i < n; i++ {
		r := Rule{Name: fmt.Sprint("rule", i), Enabled: true, Action: Permit,
			Source:      []Term{PrefixTerm(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))},
			Destination: []Term{Host(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}))},
			Services:    []string{fmt.Sprint("svc", i%50)},
		}
		if i%100 == 99 { // a broad deny every hundred rules, for an unrelated protocol
			r.Source, r.Destination, r.Services = nil, nil, []string{"svc49"}
			r.Destination = []Term{PrefixTerm(pfx("192.0.2.0/24"))}
			r.Action = Deny
		}
		m.Rules = append(m.Rules, r)
	}
	return m
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		rs, err := Compile(benchModel(n))
		if err != nil {
			b.Fatal(err)
		}
		last := n - 2 // the last ordinary rule: the worst case of a linear scan
		hit := Query{Src: netip.AddrFrom4([4]byte{10, byte(last >> 8), byte(last), 77}), Dst: netip.AddrFrom4([4]byte{172, 16, byte(last >> 8), byte(last)}),
			Proto: tcp, DstPort: uint16(1000 + last%50), InIface: -1, OutIface: -1}
		if r, _ := rs.Match(&hit); r != last {
			b.Fatalf("hit query matched %d, want %d", r, last)
		}
		miss := hit
		miss.DstPort++ // right addresses, wrong service
		if r, _ := rs.Match(&miss); r != -1 {
			b.Fatalf("miss query matched %d", r)
		}
		for _, c := range []struct {
			name string
			q    *Query
		}{{"hit", &hit}, {"miss", &miss}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rs.Match(c.q)
				}
			})
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		m := benchModel(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var rs *Ruleset
			for b.Loop() {
				rs, _ = Compile(m)
			}
			st := rs.Stats()
			b.ReportMetric(float64(st.Bytes)/(1<<20), "MiB")
			b.ReportMetric(float64(st.DistinctRows), "rows")
		})
	}
}

func BenchmarkIfaceForAddr(b *testing.B) {
	rs, err := Compile(storyModel())
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("10.30.1.2")
	b.ReportAllocs()
	for b.Loop() {
		rs.IfaceForAddr(a)
	}
}
