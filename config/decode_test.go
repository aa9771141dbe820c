package config

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"keepstate/policy"
	"keepstate/reason"
)

var update = flag.Bool("update", false, "rewrite golden files")

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseStory1(t *testing.T) {
	c, err := Parse("story1.cfg", readFile(t, "testdata/story1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if !s.Require3WayHandshake || !s.AntiSpoofing || !s.LogDroppedPackets {
		t.Errorf("switches: %+v", s)
	}
	if s.Timeouts.TCPEstablished != 86400*time.Second {
		t.Errorf("TCPEstablishedTimeout = %v (default expected)", s.Timeouts.TCPEstablished)
	}
	if c.Policy.DefaultAction != policy.Drop {
		t.Errorf("DefaultAction = %v", c.Policy.DefaultAction)
	}
	want := []string{"TrafficPolicy.DefaultAction=Drop", "Logging.LogDroppedPackets=1"}
	if got := c.ChangedSettings(); !slices.Equal(got, []string{"DefaultAction=Drop", "LogDroppedPackets=1"}) {
		t.Errorf("ChangedSettings = %v, want %v", got, want)
	}
	m := &c.Policy
	if len(m.Interfaces) != 4 || len(m.AddressGroups) != 3 || len(m.Services) != 4 || len(m.Rules) != 5 {
		t.Fatalf("counts: %d interfaces, %d groups, %d services, %d rules", len(m.Interfaces), len(m.AddressGroups), len(m.Services), len(m.Rules))
	}
	if got := m.AddressGroups[0]; got.Name != "Web servers" || len(got.Items) != 2 || got.Items[1].Description != "www2" || got.Items[1].ID != 2 {
		t.Errorf("group 0 = %+v", got)
	}
	if got := m.Interfaces[3]; got.Device != "eth3" || got.Group != policy.Trusted || got.Addresses[0] != netip.MustParsePrefix("192.168.10.1/24") || got.Networks[0] != netip.MustParsePrefix("192.168.20.0/24") {
		t.Errorf("interface 3 = %+v", got)
	}
	if got := m.Services[1]; got.Protocol != policy.ProtoTCP || !slices.Equal(got.Ports, []policy.PortRange{{Lo: 8009, Hi: 8009}, {Lo: 8080, Hi: 8089}}) {
		t.Errorf("service Tomcat = %+v", got)
	}
	r := m.Rules[4]
	if r.Enabled || len(r.Source) != 2 || r.Source[1] != policy.Iface("Tomcat") || !slices.Equal(r.Services, []string{"HTTP"}) {
		t.Errorf("rule 4 = %+v", r)
	}

	rs, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	dmz, tomcat := rs.IfaceByDevice("eth1"), rs.IfaceByDevice("eth2")
	queries := []struct {
		q    policy.Query
		rule int
		a    policy.Action
	}{
		{policy.Query{Src: ip("10.2.0.10"), Dst: ip("10.3.0.25"), Proto: 6, DstPort: 8080, InIface: dmz, OutIface: tomcat}, 2, policy.Permit},
		{policy.Query{Src: ip("10.3.0.25"), Dst: ip("10.2.0.10"), Proto: 6, DstPort: 80, InIface: tomcat, OutIface: dmz}, 3, policy.Deny},
		{policy.Query{Src: ip("192.168.20.7"), Dst: ip("10.3.0.25"), Proto: 6, DstPort: 22, InIface: 3, OutIface: tomcat}, -1, policy.Drop},
		{policy.Query{Src: ip("192.168.10.7"), Dst: ip("10.3.0.25"), Proto: 6, DstPort: 22, InIface: 3, OutIface: tomcat}, 0, policy.Permit},
	}
	for _, tt := range queries {
		if rule, a := rs.Match(&tt.q); rule != tt.rule || a != tt.a {
			t.Errorf("Match(%v -> %v) = %d %v, want %d %v", tt.q.Src, tt.q.Dst, rule, a, tt.rule, tt.a)
		}
	}
}

// TestSeedLine: the one line the administrator of the first incident edited must
// work as written, and change nothing else.
func TestSeedLine(t *testing.T) {
	const file = `<config>
<table name="SecuritySettings">
<variable name="Require3WayHandshake">0</variable>
</table>
</config>`
	c, err := Parse("winroute.cfg", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if c.Settings.Require3WayHandshake {
		t.Error("Require3WayHandshake still on")
	}
	if got := c.ChangedSettings(); !slices.Equal(got, []string{"Require3WayHandshake=0"}) {
		t.Errorf("ChangedSettings = %v", got)
	}
	d := Default()
	d.Settings.Require3WayHandshake = false
	if !bytes.Equal(Marshal(c), Marshal(d)) {
		t.Error("a file with one setting differs from the defaults by more than that setting")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"misspelt setting", `<config>
<table name="ConnTrack">
  <variable name="TcpEstablishedTimout">9000</variable>
  <variable name="tcpsynsenttimeout">9</variable>
</table>
</config>`, []string{
			`t.cfg:3: unknown setting "TcpEstablishedTimout" (did you mean TcpEstablishedTimeout?)`,
			`t.cfg:4: unknown setting "tcpsynsenttimeout" (did you mean TcpSynSentTimeout?)`,
		}},
		{"bad values and duplicates", `<config>
<table name="SecuritySettings">
  <variable name="Require3WayHandshake">yes</variable>
  <variable name="ConnLimitPerSource">-1</variable>
  <variable name="ConnLimitPerSource">5</variable>
</table>
<table name="Logging"><variable name="LogDropReasons">state_expired,handshake_not_complete</variable></table>
<table name="SecuritySettings"></table>
</config>`, []string{
			`t.cfg:3: Require3WayHandshake: want 0 or 1, got "yes"`,
			`t.cfg:4: ConnLimitPerSource: -1 is out of range 0-16777216`,
			`t.cfg:5: setting ConnLimitPerSource given twice (first at line 4)`,
			`t.cfg:7: LogDropReasons: unknown reason "handshake_not_complete" (did you mean handshake_not_completed?)`,
			`t.cfg:8: table "SecuritySettings" appears twice (first at line 2)`,
		}},
		{"wrong tables and elements", `<config>
<table name="Security"><variable name="AntiSpoofing">1</variable></table>
<table name="ConnTrack"><variable name="AntiSpoofing">1</variable></table>
<list name="TrafficRule_v2"></list>
<table name="IPServices"/>
<tabel name="x"/>
<table name="Logging"><var name="x">1</var>text</table>
</config>`, []string{
			`t.cfg:2: unknown table "Security" (did you mean SecuritySettings?)`,
			`t.cfg:3: setting AntiSpoofing belongs in <table name="SecuritySettings">, not "ConnTrack"`,
			`t.cfg:4: unknown list "TrafficRule_v2" (did you mean TrafficRules_v2?)`,
			`t.cfg:5: "IPServices" is a list: write <list name="IPServices">`,
			`t.cfg:6: unknown element <tabel> in <config> (did you mean table?); want <table> or <list>`,
			`t.cfg:7: unknown element <var> in <table>; want <variable>`,
			`t.cfg:7: unexpected text "text" in <table>`,
		}},
		{"list items", `<config>
<list name="Interfaces">
  <listitem>
    <variable name="Id">1</variable><variable name="Name">LAN</variable>
    <variable name="Group">Local</variable>
    <variable name="Device">eth1</variable>
    <variable name="Addresses">10.0.0.1/24;10.0.0.300/24</variable>
  </listitem>
  <listitem>
    <variable name="Id">1</variable><variable name="Name">LAN</variable><variable name="Group">Trusted</variable>
    <variable name="Device">eth1</variable>
    <variable name="Networks">10.9.0.1/16</variable>
  </listitem>
</list>
<list name="IpAccessList">
  <listitem><variable name="Name">A</variable><variable name="Value">group:B</variable></listitem>
  <listitem><variable name="Name">B</variable><variable name="Value">group:A</variable></listitem>
  <listitem><variable name="Name">C</variable><variable name="Value">iface:LAN</variable></listitem>
  <listitem><variable name="Name">C</variable><variable name="Valeu">host:1.2.3.4</variable></listitem>
</list>
<list name="IPServices">
  <listitem><variable name="Name">Web</variable><variable name="Protocol">tpc</variable></listitem>
  <listitem><variable name="Name">Ping</variable><variable name="Protocol">icmp</variable><variable name="Condition">dport=8</variable></listitem>
  <listitem><variable name="Name">Web</variable><variable name="Protocol">tcp</variable><variable name="Condition">dport=90-80</variable></listitem>
</list>
<list name="TrafficRules_v2">
  <listitem>
    <variable name="Name">r1</variable><variable name="Action">Allow</variable>
    <variable name="Src">group:a;iface:eth1;ifgroup:Internet</variable>
    <variable name="Dst">any;host:1.2.3.4</variable>
    <variable name="Service">HTTP;Web</variable>
  </listitem>
  <listitem><variable name="Name">r1</variable><variable name="Action">Drop</variable><variable name="Enabled">2</variable></listitem>
  <listitem><variable name="Name"> r3</variable></listitem>
</list>
</config>`, []string{
			`t.cfg:5: Group: unknown interface group "Local" (want Other, Internet, Trusted, Guest, VPN)`,
			`t.cfg:7: Addresses: bad prefix "10.0.0.300/24": want ADDRESS/BITS`,
			`t.cfg:10: duplicate Id 1 in Interfaces (first at line 4)`,
			`t.cfg:10: interface "LAN" defined twice (first at line 4)`,
			`t.cfg:11: device "eth1" defined twice (first at line 6)`,
			`t.cfg:12: Networks: prefix "10.9.0.1/16" has host bits set; did you mean 10.9.0.0/16?`,
			`t.cfg:17: address groups nest in a cycle: A -> B -> A`,
			`t.cfg:18: Value: an address group holds host:, prefix:, range: or group: values, not "iface:LAN"`,
			`t.cfg:19: IpAccessList item lacks the field Value`,
			`t.cfg:19: unknown field "Valeu" in IpAccessList (did you mean Value?)`,
			`t.cfg:22: Protocol: unknown protocol "tpc": want tcp, udp, tcp/udp, icmp, icmpv6, any or a protocol number 0-255 (did you mean tcp?)`,
			`t.cfg:23: Condition: condition dport= needs protocol tcp, udp or tcp/udp, not icmp`,
			`t.cfg:24: service "Web" defined twice (first at line 22)`,
			`t.cfg:24: Condition: port range "90-80" ends before it starts`,
			`t.cfg:28: Action: want Permit, Deny or Drop, got "Allow"`,
			`t.cfg:29: no address group "a" (did you mean A?)`,
			`t.cfg:29: no interface "eth1" (iface: takes the interface's Name, not its Device)`,
			`t.cfg:30: Dst: any cannot be combined with other terms`,
			`t.cfg:31: no service "HTTP"`,
			`t.cfg:33: rule "r1" defined twice (first at line 28)`,
			`t.cfg:33: Enabled: want 0 or 1, got "2"`,
			`t.cfg:34: TrafficRules_v2 item lacks the field Action`,
			`t.cfg:34: Name: name " r3" has leading or trailing spaces`,
		}},
		{"syntax error stops", "<config>\n<table name=\"Logging\">\n<variable name=\"X\">1</table>\n</config>", []string{
			`t.cfg:3: XML syntax error: element <variable> closed by </table>`,
		}},
		{"doctype refused", "<!DOCTYPE config [<!ENTITY x \"y\">]>\n<config/>", []string{
			`t.cfg:1: XML directives (DOCTYPE, ENTITY) are not allowed`,
		}},
		{"empty file", "", []string{`t.cfg:1: no <config> element`}},
		{"adaptive", `<config><table name="ConnTrack">
<variable name="AdaptiveStartPercent">90</variable>
<variable name="AdaptiveEndPercent">80</variable>
</table></config>`, []string{`t.cfg:3: AdaptiveEndPercent (80) must be above AdaptiveStartPercent (90)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.cfg", []byte(tt.file))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if _, ok := err.(ErrorList); !ok {
				t.Errorf("error is %T, want ErrorList", err)
			}
		})
	}
}

func TestWarningKeepAlive(t *testing.T) {
	const file = `<config>
<table name="ConnTrack">
  <variable name="TcpEstablishedTimeout">3600</variable>
</table>
</config>`
	c, err := Parse("w.cfg", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || w[0].Line != 3 || !strings.Contains(w[0].Error(), "w.cfg:3: TcpEstablishedTimeout 3600 s is below the 7440 s") {
		t.Errorf("warnings = %v", w)
	}
	c2, err := Parse("w.cfg", []byte(strings.Replace(file, "3600", "9000", 1)))
	if err != nil || len(c2.Warnings()) != 0 || c2.Settings.Timeouts.TCPEstablished != 9000*time.Second {
		t.Errorf("9000 s: err %v warnings %v timeout %v", err, c2.Warnings(), c2.Settings.Timeouts.TCPEstablished)
	}
}

func TestSettingsAccessors(t *testing.T) {
	c := Default()
	if err := c.SetSetting("LogDropReasons", "handshake_not_completed,state_expired"); err != nil {
		t.Fatal(err)
	}
	if !c.Settings.DropLogged(reason.HandshakeNotCompleted) || c.Settings.DropLogged(reason.OutOfWindow) {
		t.Errorf("DropLogged wrong for %v", c.Settings.LogDropReasons)
	}
	if err := c.SetSetting("TcpEstablishedTimeout", "0"); err == nil || err.Error() != "TcpEstablishedTimeout: 0 is out of range 1-31536000" {
		t.Errorf("SetSetting out of range: %v", err)
	}
	if err := c.SetSetting("MaxConnection", "5"); err == nil || !strings.Contains(err.Error(), "did you mean MaxConnections?") {
		t.Errorf("SetSetting unknown: %v", err)
	}
	if v, _ := c.Setting("TcpEstablishedTimeout"); v != "86400" {
		t.Errorf("Setting = %q after a refused change", v)
	}
	if got := c.ChangedSettings(); !slices.Equal(got, []string{"LogDropReasons=handshake_not_completed,state_expired"}) {
		t.Errorf("ChangedSettings = %v", got)
	}
	if n := len(AllSettings()); n != 30 {
		t.Errorf("AllSettings has %d entries", n)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"TcpEstablishedTimeout", "TcpSynSentTimeout", "Require3WayHandshake"}
	for in, want := range map[string]string{
		"TcpEstablishedTimout":  " (did you mean TcpEstablishedTimeout?)",
		"require3wayhandshake":  " (did you mean Require3WayHandshake?)",
		"Require3WayHandshakes": " (did you mean Require3WayHandshake?)",
		"Timeout":               "",
		"":                      "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStory2(t *testing.T) {
	c, err := Parse("story2.cfg", readFile(t, "testdata/story2.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("warnings: %v", c.Warnings())
	}
	s := c.Settings
	if s.Timeouts.TCPEstablished != 9000*time.Second || !slices.Equal(s.LogDropReasons, []reason.Reason{reason.StateExpired, reason.HandshakeNotCompleted}) {
		t.Errorf("settings: %v %v", s.Timeouts.TCPEstablished, s.LogDropReasons)
	}
	r := c.Policy.Rules[0]
	if r.ID != 0 || !r.Enabled || r.Action != policy.Permit || !r.LogConnections || r.Destination[0] != policy.Host(netip.MustParseAddr("10.20.1.5")) {
		t.Errorf("rule: %+v", r)
	}
	// Ids are given on export, after the highest (none here).
	c2, err := Parse("x", Marshal(c))
	if err != nil || c2.Policy.Rules[0].ID != 1 || c2.Policy.Interfaces[1].ID != 2 {
		t.Errorf("ids after export: %v %+v", err, c2)
	}
}
