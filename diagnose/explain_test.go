package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"net/netip"

	"keepstate/config"
	"keepstate/packet"
	"keepstate/synth"
)

func TestExplainSpec(t *testing.T) {
	story1 := story1Config(t)
	relaxed := story1Config(t)
	relaxed.Settings.Conntrack.Strict = false
	const (
		r1 = `rule 1 "Internet to web servers"`
		r2 = `rule 2 "Web servers to Tomcat"`
		r3 = `rule 3 "Tomcat must not call the web servers"`
	)
	notInternet := "source: ifgroup:Internet does not match 10.1.0.2 (ingress interface LAN)"
	tests := []struct {
		name   string
		pol    *Policy
		spec   string
		steps  []Step // Detail "" is not compared (it holds a connection id)
		action string
		reason string
		rule   string
	}{
		{"permitted syn", story1, "tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]", []Step{
			{"ingress", "given", "LAN"},
			{"anti-spoofing", "pass", "10.1.0.2 may arrive on LAN (10.1.0.0/24)"},
			{"connection", "none", "no tracked connection; a SYN may open one: the rules decide"},
			{r1, "no match", notInternet},
			{r2, "match", `Permit: source group:Web servers matches 10.1.0.2 (ingress interface LAN); destination group:Tomcat servers matches 10.2.0.2 (egress interface DMZ); service "Tomcat" matches tcp port 8080`},
			{"new connection", "created", ""},
		}, "accept", "", `2 "Web servers to Tomcat"`},
		{"the seed's dropped reply", story1, "tcp 10.2.0.2:8080 > 10.1.0.2:27779 flags PA seq 2673204299 ack 173509679 len 52 iface DMZ", []Step{
			{"ingress", "given", "DMZ"},
			{"anti-spoofing", "pass", "10.2.0.2 may arrive on DMZ (10.2.0.0/24)"},
			{"connection", "drop", "handshake_not_completed: 3-way handshake not completed (no tracked connection, and Require3WayHandshake=1 lets only a SYN open one)"},
		}, "drop", "handshake_not_completed", ""},
		{"the seed's SYN-ACK, handshake relaxed", relaxed, "tcp 10.2.0.2:8080 > 10.1.0.2:27779 flags SA [iface DMZ]", []Step{
			{"ingress", "given", "DMZ"},
			{"anti-spoofing", "pass", "10.2.0.2 may arrive on DMZ (10.2.0.0/24)"},
			{"connection", "none", "no tracked connection; Require3WayHandshake=0 picks the connection up mid-stream: the rules decide"},
			{"orientation", "reply", "a SYN-ACK is a reply: the rules are asked about the connection 10.1.0.2:27779 > 10.2.0.2:8080 it belongs to"},
			{r1, "no match", notInternet},
			{r2, "match", `Permit: source group:Web servers matches 10.1.0.2 (ingress interface LAN); destination group:Tomcat servers matches 10.2.0.2 (egress interface DMZ); service "Tomcat" matches tcp port 8080`},
			{"new connection", "created", ""},
		}, "accept", "", `2 "Web servers to Tomcat"`},
		{"spoofed source", story1, "tcp 10.9.9.9:1 > 10.2.0.2:8080 flags S iface eth1", []Step{
			{"ingress", "given", "LAN"},
			{"anti-spoofing", "drop", "10.9.9.9 does not belong to LAN (10.1.0.0/24)"},
		}, "drop", "anti_spoofing", ""},
		{"default rule", story1, "udp 10.1.0.2:5000 > 10.2.0.2:53", []Step{
			{"ingress", "inferred", "LAN, from the source address 10.1.0.2 (not given, so anti-spoofing cannot be checked)"},
			{"anti-spoofing", "skipped", "the ingress interface is not known"},
			{"connection", "none", "no tracked connection; a UDP datagram opens one: the rules decide"},
			{r1, "no match", notInternet},
			{r2, "no match", `service: "Tomcat" does not match udp port 53`},
			{r3, "no match", "source: iface:DMZ does not match 10.1.0.2 (ingress interface LAN)"},
			{"default rule", "match", "Drop: no rule matched"},
		}, "drop", "default_rule", ""},
		{"icmp error with nothing to relate to", story1, "icmp 10.2.0.2 > 10.1.0.2 type 3 code 3", []Step{
			{"ingress", "inferred", "DMZ, from the source address 10.2.0.2 (not given, so anti-spoofing cannot be checked)"},
			{"anti-spoofing", "skipped", "the ingress interface is not known"},
			{"connection", "drop", "icmp_unrelated: ICMP error unrelated to any connection"},
		}, "drop", "icmp_unrelated", ""},
		{"ipv6 under the built-in default", DefaultPolicy(), "tcp [2001:db8::1]:41234 > [2001:db8::2]:443 flags SYN", []Step{
			{"ingress", "inferred", "Internet, from the source address 2001:db8::1 (not given, so anti-spoofing cannot be checked)"},
			{"anti-spoofing", "skipped", "the ingress interface is not known"},
			{"connection", "none", "no tracked connection; a SYN may open one: the rules decide"},
			{`rule 1 "Permit all connections"`, "match", "Permit: source any (empty); destination any (empty); service any (empty)"},
			{"new connection", "created", ""},
		}, "accept", "", `1 "Permit all connections"`},
		{"ping6", DefaultPolicy(), "icmp6 2001:db8::1 > 2001:db8::2", []Step{
			{"ingress", "inferred", "Internet, from the source address 2001:db8::1 (not given, so anti-spoofing cannot be checked)"},
			{"anti-spoofing", "skipped", "the ingress interface is not known"},
			{"connection", "none", "no tracked connection; an ICMP query opens one: the rules decide"},
			{`rule 1 "Permit all connections"`, "match", "Permit: source any (empty); destination any (empty); service any (empty)"},
			{"new connection", "created", ""},
		}, "accept", "", `1 "Permit all connections"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			x, err := ExplainSpec(tt.pol, sp, 1_700_000_000e9)
			if err != nil {
				t.Fatal(err)
			}
			if x.Action != tt.action || x.Reason != tt.reason || x.Rule != tt.rule || x.Mismatch != "" {
				t.Errorf("verdict %q %q rule %q mismatch %q", x.Action, x.Reason, x.Rule, x.Mismatch)
			}
			if len(x.Steps) != len(tt.steps) {
				t.Fatalf("%d steps, want %d: %+v", len(x.Steps), len(tt.steps), x.Steps)
			}
			for i, want := range tt.steps {
				got := x.Steps[i]
				if want.Detail == "" {
					if !strings.HasPrefix(got.Detail, "connection #") {
						t.Errorf("step %d detail %q", i+1, got.Detail)
					}
					got.Detail = ""
				}
				if got != want {
					t.Errorf("step %d\n got %+v\nwant %+v", i+1, got, want)
				}
			}
		})
	}
}

func TestExplainUnknownInterface(t *testing.T) {
	sp, err := ParseSpec("tcp 10.1.0.2:1 > 10.2.0.2:8080 iface LAM")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ExplainSpec(story1Config(t), sp, 0)
	if err == nil || err.Error() != `no interface "LAM" in the configuration (it has WAN, LAN, DMZ)` {
		t.Errorf("error %v", err)
	}
}

// TestExplainCapture explains packets of the first story's capture in their
// context: the reply of a connection whose SYN the firewall saw, and the SYN-ACK
// of one the switch leaked.
func TestExplainCapture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "story1.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := synth.WriteStory1(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !s.LeakedPorts[27751] || s.LeakedPorts[27750] {
		t.Fatalf("leaked ports %v: the packet numbers below assume 27751 only of the first two", s.LeakedPorts)
	}
	cfg := story1Config(t)
	// Packets 1-9 are the first login (SYN, SYN-ACK, ACK, request, reply, ...);
	// packet 10 is the second login's SYN-ACK, whose SYN went around.
	x, err := ExplainCapture(cfg, path, 5)
	if err != nil {
		t.Fatal(err)
	}
	if x.Action != "accept" || len(x.Steps) != 3 || x.Steps[2].Result != "found" ||
		!strings.Contains(x.Steps[2].Detail, "state ESTABLISHED, this packet in its reply direction: accepted without consulting the rules") ||
		x.Steps[0] != (Step{"ingress", "given", "DMZ"}) {
		t.Errorf("packet 5: %+v", x)
	}
	if !strings.HasPrefix(x.Packet, "tcp 10.2.0.2:8080 > 10.1.0.2:27750 flags P. ") ||
		!strings.HasPrefix(x.Context, "packet 5 of "+path+", captured at 2012-09-23 11:48:46.006000, after the 4 before it were replayed") {
		t.Errorf("packet %q context %q", x.Packet, x.Context)
	}
	x, err = ExplainCapture(cfg, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if x.Action != "drop" || x.Reason != "handshake_not_completed" || !strings.HasPrefix(x.Packet, "tcp 10.2.0.2:8080 > 10.1.0.3:27751 flags S. ") {
		t.Errorf("packet 10: %+v", x)
	}
	if _, err := ExplainCapture(cfg, path, 10000); err == nil || !strings.Contains(err.Error(), "has 198 packets, not 10000") {
		t.Errorf("past the end: %v", err)
	}
}

func TestParseSpec(t *testing.T) {
	good := []struct {
		in   string
		want Spec
		out  string
	}{
		{"tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]",
			Spec{Proto: packet.ProtoTCP, Src: ap("10.1.0.2:41234"), Dst: ap("10.2.0.2:8080"), Flags: packet.SYN, Iface: "LAN"},
			"tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S iface LAN"},
		{"TCP [2001:db8::1]:1 > [2001:db8::2]:2 flags SYN,ACK seq 5 ack 6 len 7",
			Spec{Proto: packet.ProtoTCP, Src: ap("[2001:db8::1]:1"), Dst: ap("[2001:db8::2]:2"), Flags: packet.SYN | packet.ACK, Seq: 5, Ack: 6, PayloadLen: 7},
			"tcp [2001:db8::1]:1 > [2001:db8::2]:2 flags S. seq 5 ack 6 len 7"},
		{"tcp 1.2.3.4:5 > 6.7.8.9:10 flags FA",
			Spec{Proto: packet.ProtoTCP, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:10"), Flags: packet.FIN | packet.ACK},
			"tcp 1.2.3.4:5 > 6.7.8.9:10 flags F."},
		{"tcp 1.2.3.4:5 > 6.7.8.9:10 flags none",
			Spec{Proto: packet.ProtoTCP, Src: ap("1.2.3.4:5"), Dst: ap("6.7.8.9:10")},
			"tcp 1.2.3.4:5 > 6.7.8.9:10 flags none"},
		{"udp 10.0.0.1:53 > 10.0.0.2:5353 len 40 iface DMZ",
			Spec{Proto: packet.ProtoUDP, Src: ap("10.0.0.1:53"), Dst: ap("10.0.0.2:5353"), PayloadLen: 40, Iface: "DMZ"},
			"udp 10.0.0.1:53 > 10.0.0.2:5353 len 40 iface DMZ"},
		{"icmp 10.0.0.1 > 10.0.0.2 type 0 id 7 seq 9",
			Spec{Proto: packet.ProtoICMP, Src: ap("10.0.0.1:0"), Dst: ap("10.0.0.2:0"), ICMPType: 0, ICMPID: 7, ICMPSeq: 9},
			"icmp 10.0.0.1 > 10.0.0.2 type 0 code 0 id 7 seq 9"},
		{"icmp6 [2001:db8::1] > 2001:db8::2 type 1 code 4",
			Spec{Proto: packet.ProtoICMPv6, Src: ap("[2001:db8::1]:0"), Dst: ap("[2001:db8::2]:0"), ICMPType: 1, ICMPCode: 4, ICMPID: 1, ICMPSeq: 1},
			"icmp6 2001:db8::1 > 2001:db8::2 type 1 code 4"},
	}
	for _, tt := range good {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.out {
			t.Errorf("%q: String %q, want %q", tt.in, s, tt.out)
		}
		checkBuild(t, got)
	}
	bad := []struct{ in, err string }{
		{"", "want \"PROTO SRC > DST"},
		{"tcp 10.0.0.1:1 < 10.0.0.2:2", "want \"PROTO SRC > DST"},
		{"sctp 10.0.0.1:1 > 10.0.0.2:2", `protocol "sctp"`},
		{"tcp 10.0.0.1 > 10.0.0.2:2", `source: "10.0.0.1": want ADDRESS:PORT`},
		{"tcp 10.0.0.1:1 > [2001:db8::1]:2", "different address families"},
		{"icmp 2001:db8::1 > 2001:db8::2", "use icmp6"},
		{"icmp6 10.0.0.1 > 10.0.0.2", "icmp6 needs IPv6"},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 flags SX", `flags "SX"`},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 flags SYN,FOO", `flag "FOO"`},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 seq", `"seq" needs a value`},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 seq 4294967296", "at most 32 bits"},
		{"udp 10.0.0.1:1 > 10.0.0.2:2 flags S", "flags applies to tcp only"},
		{"udp 10.0.0.1:1 > 10.0.0.2:2 ack 1", "ack applies to tcp only"},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 type 3", "type applies to icmp and icmp6 only"},
		{"icmp 10.0.0.1 > 10.0.0.2 type 256", "at most 8 bits"},
		{"icmp 10.0.0.1 > 10.0.0.2 seq 70000", "at most 65535"},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 len 70000", "at most 65000"},
		{"tcp 10.0.0.1:1 > 10.0.0.2:2 ttl 3", `unknown keyword "ttl"`},
		{"tcp [fe80::1%eth0]:1 > [fe80::2]:2", "zones are not supported"},
	}
	for _, tt := range bad {
		_, err := ParseSpec(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: error %v, want one containing %q", tt.in, err, tt.err)
		}
	}
}

var ap = netip.MustParseAddrPort

// checkBuild decodes what Build made and compares it with the spec.
func checkBuild(t *testing.T, sp Spec) {
	t.Helper()
	b := sp.Build()
	var p packet.Parsed
	if err := p.Decode(b, packet.LinkRaw); err != nil {
		t.Fatalf("%v: built packet does not decode: %v", sp, err)
	}
	icmpError := (sp.Proto == packet.ProtoICMP || sp.Proto == packet.ProtoICMPv6) && !sp.isEcho()
	if p.Proto != sp.Proto || p.Src != sp.Src.Addr() || p.Dst != sp.Dst.Addr() || p.PayloadLen != sp.PayloadLen && !icmpError {
		t.Fatalf("%v: decoded %v %v > %v len %d", sp, p.Proto, p.Src, p.Dst, p.PayloadLen)
	}
	switch sp.Proto {
	case packet.ProtoTCP:
		if p.TCPFlags != sp.Flags || p.Seq != sp.Seq || p.Ack != sp.Ack || p.SrcPort != sp.Src.Port() || p.DstPort != sp.Dst.Port() {
			t.Fatalf("%v: decoded flags %v seq %d ack %d ports %d %d", sp, p.TCPFlags, p.Seq, p.Ack, p.SrcPort, p.DstPort)
		}
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if p.ICMPType != sp.ICMPType || p.ICMPCode != sp.ICMPCode {
			t.Fatalf("%v: decoded type %d code %d", sp, p.ICMPType, p.ICMPCode)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]",
		"tcp [2001:db8::1]:1 > [2001:db8::2]:2 flags SYN,ACK seq 5 ack 6 len 7",
		"udp 10.0.0.1:53 > 10.0.0.2:5353 len 40",
		"icmp 10.0.0.1 > 10.0.0.2 type 3 code 1",
		"icmp6 2001:db8::1 > [2001:db8::2] type 129 id 3 seq 4",
		"tcp 1.2.3.4:5 > 6.7.8.9:10 flags none [iface",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		again, err := ParseSpec(sp.String())
		if err != nil {
			t.Fatalf("%q: String %q does not parse: %v", s, sp.String(), err)
		}
		if again != sp {
			t.Fatalf("%q: round trip %+v != %+v", s, again, sp)
		}
		checkBuild(t, sp)
	})
}

// explain says which rule's handshake option decided a pickup.
func TestExplainRuleHandshake(t *testing.T) {
	text, _ := synth.Story1Config(true)
	cfg, err := config.Parse("story1.cfg", synth.SetRuleOption(text, "Web servers to Tomcat", "Handshake", "loose"))
	if err != nil {
		t.Fatal(err)
	}
	loose := policyOf(t, cfg)
	cfg, err = config.Parse("story1.cfg", synth.SetRuleOption(text, "Internet to web servers", "Handshake", "loose"))
	if err != nil {
		t.Fatal(err)
	}
	otherLoose := policyOf(t, cfg)
	for _, c := range []struct {
		pol    *Policy
		result string
		words  string
	}{
		{loose, "apply", "Handshake of rule 'Web servers to Tomcat' (loose) lets this packet"},
		{otherLoose, "drop", "Handshake of rule 'Web servers to Tomcat' (inherit, and Require3WayHandshake=1) decided: only a loose rule picks a connection up mid-stream, so this packet gets strict tracking's handshake_not_completed"},
	} {
		sp, err := ParseSpec("tcp 10.2.0.2:8080 > 10.1.0.2:27779 flags SA iface DMZ")
		if err != nil {
			t.Fatal(err)
		}
		x, err := ExplainSpec(c.pol, sp, 1_700_000_000e9)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, st := range x.Steps {
			if st.Stage == "state options" && st.Result == c.result && strings.Contains(st.Detail, c.words) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: steps %+v", c.result, x.Steps)
		}
	}
}
