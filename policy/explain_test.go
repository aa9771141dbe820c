package policy

import (
	"math/rand/v2"
	"testing"
)

func TestExplainStory(t *testing.T) {
	m := storyModel()
	tests := []struct {
		name    string
		rule    int
		q       Query
		matched bool
		field   string
		detail  string
	}{
		{"match through groups", 0,
			Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat},
			true, "",
			`source group:WebServers matches 10.2.0.10 (ingress interface DMZ); destination group:TomcatServers matches 10.3.0.5 (egress interface Tomcat); service "Tomcat" matches tcp port 8080`},
		{"source outside group", 0,
			Query{Src: ip("10.2.0.30"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8080, InIface: dmz, OutIface: tomcat},
			false, "source", "group:WebServers does not match 10.2.0.30 (ingress interface DMZ)"},
		{"port outside service", 0,
			Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8090, InIface: dmz, OutIface: tomcat},
			false, "service", `"Tomcat" does not match tcp port 8090`},
		{"disabled", 1,
			Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.5"), Proto: tcp, DstPort: 8090, InIface: dmz, OutIface: tomcat},
			false, "enabled", "the rule is disabled"},
		{"ifgroup needs a known ingress", 2,
			Query{Src: ip("198.51.100.7"), Dst: ip("10.2.0.11"), Proto: tcp, DstPort: 443, InIface: -1, OutIface: dmz},
			false, "source", "ifgroup:Internet does not match 198.51.100.7 (ingress interface unknown)"},
		{"destination host", 3,
			Query{Src: ip("192.168.1.5"), Dst: ip("10.3.0.54"), Proto: udp, DstPort: 53, InIface: lan, OutIface: tomcat},
			false, "destination", "host:10.3.0.53 does not match 10.3.0.54 (egress interface Tomcat)"},
		{"icmp type", 4,
			Query{Src: ip("192.168.1.5"), Dst: ip("8.8.8.8"), Proto: icmp, ICMPType: 0, InIface: lan, OutIface: wan},
			false, "service", `"Ping", "Ping6" does not match icmp type 0`},
		{"empty sides match anything", 4,
			Query{Src: ip("192.168.1.5"), Dst: ip("8.8.8.8"), Proto: icmp, ICMPType: 8, InIface: lan, OutIface: wan},
			true, "", `source any (empty); destination any (empty); service "Ping" matches icmp type 8`},
		{"interface term", 6,
			Query{Src: ip("192.168.1.5"), Dst: ip("8.8.8.8"), Proto: tcp, DstPort: 25, InIface: lan, OutIface: wan},
			true, "", "source iface:LAN matches 192.168.1.5 (ingress interface LAN); destination ifgroup:Internet matches 8.8.8.8 (egress interface WAN); service any (empty)"},
		{"disabled group item", 8,
			Query{Src: ip("8.8.8.8"), Dst: ip("10.3.0.9"), Proto: udp, DstPort: 9, InIface: wan, OutIface: tomcat},
			false, "source", "group:Internal does not match 8.8.8.8 (ingress interface WAN)"},
		{"invalid address", 0,
			Query{Proto: 47, InIface: -1, OutIface: -1},
			false, "source", "group:WebServers does not match no address (ingress interface unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Explain(tt.rule, &tt.q)
			if got.Rule != tt.rule || got.Name != m.Rules[tt.rule].Name {
				t.Errorf("rule %d %q, want %d %q", got.Rule, got.Name, tt.rule, m.Rules[tt.rule].Name)
			}
			if got.Matched != tt.matched || got.Field != tt.field || got.Detail != tt.detail {
				t.Errorf("Explain = %v %q %q\nwant      %v %q %q", got.Matched, got.Field, got.Detail, tt.matched, tt.field, tt.detail)
			}
		})
	}
}

// TestExplainAgreesWithMatch checks that the first rule Explain calls matched is the
// one the compiled Ruleset picks, over random models where terms overlap a lot.
func TestExplainAgreesWithMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 3))
	buf := make([]byte, 600)
	for iter := 0; iter < 300; iter++ {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		g := &gen{b: buf}
		m := g.model()
		rs, err := Compile(m)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 40; k++ {
			q := g.query(len(m.Interfaces))
			want, _ := rs.Match(&q)
			got := -1
			for i := range m.Rules {
				rc := m.Explain(i, &q)
				if rc.Matched != (rc.Field == "") {
					t.Fatalf("rule %d: Matched %v with Field %q", i, rc.Matched, rc.Field)
				}
				if rc.Matched {
					got = i
					break
				}
			}
			if got != want {
				t.Fatalf("iteration %d query %+v: Explain says rule %d, Match %d", iter, q, got, want)
			}
		}
	}
}
