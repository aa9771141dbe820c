package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIfaceLookups(t *testing.T) {
	rs, err := Compile(storyModel())
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.IfaceByName("Tomcat"); got != tomcat {
		t.Errorf("IfaceByName(Tomcat) = %d", got)
	}
	if got := rs.IfaceByName("tomcat"); got != -1 {
		t.Errorf("IfaceByName is case-sensitive, got %d", got)
	}
	if got := rs.IfaceByDevice("eth3"); got != lan {
		t.Errorf("IfaceByDevice(eth3) = %d", got)
	}
	if got := rs.IfaceByDevice("eth9"); got != -1 {
		t.Errorf("IfaceByDevice(eth9) = %d", got)
	}
	if n := len(rs.Interfaces()); n != 4 {
		t.Errorf("len(Interfaces) = %d", n)
	}

	tests := []struct {
		addr string
		want int
	}{
		{"10.2.0.10", dmz},
		{"10.2.0.1", dmz}, // the firewall's own address
		{"10.3.0.255", tomcat},
		{"10.30.200.1", tomcat}, // routed network
		{"10.31.0.1", wan},      // nobody owns it: Internet catches it
		{"192.168.1.77", lan},
		{"2001:db8:1::99", lan},
		{"2001:db8:2::1", wan},
		{"203.0.113.9", wan},
		{"::ffff:10.3.0.4", tomcat},
	}
	for _, tt := range tests {
		if got := rs.IfaceForAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IfaceForAddr(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
}

func TestIfaceForAddrLongestPrefix(t *testing.T) {
	rs, err := Compile(&Model{Interfaces: []Interface{
		{Name: "VPN", Group: VPN, Networks: []netip.Prefix{pfx("10.0.0.0/8")}},
		{Name: "LAN", Group: Trusted, Addresses: []netip.Prefix{pfx("10.1.2.1/24")}},
		{Name: "Lab", Group: Other, Networks: []netip.Prefix{pfx("10.1.2.128/25")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{
		"10.9.9.9":   0,
		"10.1.2.5":   1,
		"10.1.2.200": 2,
		"10.1.3.0":   0,
		"11.0.0.0":   -1, // no Internet interface: nobody
		"2001:db8::": -1,
	} {
		if got := rs.IfaceForAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("IfaceForAddr(%s) = %d, want %d", addr, got, want)
		}
	}
}

func TestSpoofOK(t *testing.T) {
	m := storyModel()
	m.Interfaces = append(m.Interfaces, Interface{Name: "Unconfigured", Group: Guest})
	rs, err := Compile(m)
	if err != nil {
		t.Fatal(err)
	}
	const unconfigured = 4
	tests := []struct {
		iface int
		src   string
		want  bool
	}{
		{dmz, "10.2.0.10", true},
		{dmz, "10.3.0.10", false}, // the leak of the first incident: Tomcat's address on the DMZ side
		{tomcat, "10.3.0.10", true},
		{tomcat, "10.30.1.1", true}, // routed network behind Tomcat
		{tomcat, "198.51.100.1", false},
		{wan, "198.51.100.1", true},
		{wan, "203.0.113.50", true},  // the WAN's own subnet
		{wan, "192.168.1.20", false}, // a LAN address arriving from the Internet
		{wan, "2001:db8:1::20", false},
		{wan, "2001:db8:77::1", true},
		{lan, "2001:db8:1::20", true},
		{lan, "0.0.0.0", true}, // DHCP discovery
		{lan, "fe80::1", true}, // neighbour discovery
		{unconfigured, "1.1.1.1", true},
		{-1, "1.1.1.1", true},
		{17, "1.1.1.1", true},
	}
	for _, tt := range tests {
		if got := rs.SpoofOK(tt.iface, netip.MustParseAddr(tt.src)); got != tt.want {
			t.Errorf("SpoofOK(%d, %s) = %v, want %v", tt.iface, tt.src, got, tt.want)
		}
	}
}

func TestTermRoundTrip(t *testing.T) {
	good := []string{
		"any", "host:10.2.0.10", "host:2001:db8::1", "prefix:10.0.0.0/8", "prefix:2001:db8::/32",
		"range:10.0.0.1-10.0.0.9", "group:Web Servers", "iface:LAN", "ifgroup:Trusted", "ifgroup:VPN",
	}
	for _, s := range good {
		term, err := ParseTerm(s)
		if err != nil {
			t.Errorf("ParseTerm(%q): %v", s, err)
			continue
		}
		if got := FormatTerm(term); got != s {
			t.Errorf("FormatTerm(ParseTerm(%q)) = %q", s, got)
		}
	}
	bad := map[string]string{
		"":                        "bad term",
		"all":                     "bad term",
		"net:10.0.0.0/8":          "unknown term kind",
		"host:10.0.0.300":         "bad address",
		"host:fe80::1%eth0":       "zones are not allowed",
		"host:::ffff:1.2.3.4":     "write the IPv4 form 1.2.3.4",
		"prefix:10.0.0.1/8":       "did you mean 10.0.0.0/8?",
		"prefix:10.0.0.0":         "want ADDRESS/BITS",
		"range:10.0.0.9-10.0.0.1": "ends before it starts",
		"range:10.0.0.1":          "want FIRST-LAST",
		"range:10.0.0.1-::2":      "mixes IPv4 and IPv6",
		"group:":                  "empty name",
		"group: Web":              "leading or trailing spaces",
		"iface:a;b":               `contains ';'`,
		"ifgroup:Local":           "unknown interface group",
	}
	for s, want := range bad {
		_, err := ParseTerm(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTerm(%q) error = %v, want it to contain %q", s, err, want)
		}
	}
}

// FuzzParseTerm: no input panics, and every accepted term formats to text that
// parses back to the same term.
func FuzzParseTerm(f *testing.F) {
	for _, s := range []string{"any", "host:10.0.0.1", "prefix:2001:db8::/32", "range:10.0.0.1-10.0.0.9", "group:Web servers", "iface:LAN", "ifgroup:VPN", "host:::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		term, err := ParseTerm(s)
		if err != nil {
			return
		}
		back, err := ParseTerm(FormatTerm(term))
		if err != nil || back != term {
			t.Fatalf("%q -> %q -> %+v, %v", s, FormatTerm(term), back, err)
		}
	})
}
