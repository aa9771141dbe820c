//go:build linux

package nfqueue

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/firewall"
	"keepstate/policy"
)

// The lab: three network namespaces made by the test, client - firewall - server,
// joined by veth pairs. Only addresses of the benchmarking range 198.18.0.0/15
// (RFC 2544) and fd00:ca7e::/32 inside these namespaces are used.
//
//	client eth0 198.18.1.2 ── lan0 198.18.1.1 [firewall] dmz0 198.18.2.1 ── eth0 198.18.2.2 server
var (
	serverAddr = netip.MustParseAddr("198.18.2.2")
	serverV6   = netip.MustParseAddr("fd00:ca7e:2::2")
)

// Ports of the lab's services and what the policy does with them.
const (
	portPermit = 8080  // Permit
	portDeny   = 8081  // Deny: refused with RST
	portDrop   = 8082  // Drop: silence
	portUDPDen = 9001  // Deny over UDP: ICMP unreachable
	portBulk   = 8090  // Permit: throughput
	portIperf  = 52011 // Permit: iperf3 when measuring
)

var labSeq atomic.Int32

type lab struct {
	client, fw, server string // namespace names
}

// needRoot skips the test unless it can build namespaces and hooks.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and netfilter hooks")
	}
	for _, tool := range append([]string{"ip", "iptables", "ip6tables", "iptables-save", "ip6tables-save"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs the %s tool", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	id := fmt.Sprintf("%d-%d", os.Getpid(), labSeq.Add(1))
	l := &lab{client: "ksq-c-" + id, fw: "ksq-f-" + id, server: "ksq-s-" + id}
	for _, ns := range []string{l.client, l.fw, l.server} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		// Duplicate address detection would hold the new link-local addresses
		// tentative for a second or two, and neighbour discovery with them.
		sh(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	sh(t, "ip", "-n", l.fw, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", l.client)
	sh(t, "ip", "-n", l.fw, "link", "add", "dmz0", "type", "veth", "peer", "name", "eth0", "netns", l.server)
	for _, c := range [][]string{
		{l.client, "198.18.1.2/24", "fd00:ca7e:1::2/64", "eth0"},
		{l.fw, "198.18.1.1/24", "fd00:ca7e:1::1/64", "lan0"},
		{l.fw, "198.18.2.1/24", "fd00:ca7e:2::1/64", "dmz0"},
		{l.server, "198.18.2.2/24", "fd00:ca7e:2::2/64", "eth0"},
	} {
		sh(t, "ip", "-n", c[0], "addr", "add", c[1], "dev", c[3])
		sh(t, "ip", "-n", c[0], "-6", "addr", "add", c[2], "dev", c[3], "nodad")
		sh(t, "ip", "-n", c[0], "link", "set", c[3], "up")
	}
	sh(t, "ip", "-n", l.client, "route", "add", "default", "via", "198.18.1.1")
	sh(t, "ip", "-n", l.server, "route", "add", "default", "via", "198.18.2.1")
	sh(t, "ip", "-n", l.client, "-6", "route", "add", "default", "via", "fd00:ca7e:1::1")
	sh(t, "ip", "-n", l.server, "-6", "route", "add", "default", "via", "fd00:ca7e:2::1")
	sh(t, "ip", "netns", "exec", l.fw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	sh(t, "ip", "netns", "exec", l.fw, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	return l
}

// in runs fn on a thread inside namespace ns.
func (l *lab) in(t *testing.T, ns string, fn func() error) {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := runInNetns(f, fn); err != nil {
		t.Fatal(err)
	}
}

// labConfig: LAN (client) may reach the server's permitted ports; a Deny and a
// Drop rule for the others; the default rule drops.
func labConfig() *config.Config {
	c := config.Default()
	lanNet := netip.MustParsePrefix("198.18.1.0/24")
	dmzNet := netip.MustParsePrefix("198.18.2.0/24")
	lan6 := netip.MustParsePrefix("fd00:ca7e:1::/64")
	dmz6 := netip.MustParsePrefix("fd00:ca7e:2::/64")
	port := func(id int, name string, proto policy.Protocol, p uint16) policy.Service {
		return policy.Service{ID: id, Name: name, Protocol: proto, Ports: []policy.PortRange{{Lo: p, Hi: p}}}
	}
	src := []policy.Term{policy.PrefixTerm(lanNet), policy.PrefixTerm(lan6)}
	dst := []policy.Term{policy.PrefixTerm(dmzNet), policy.PrefixTerm(dmz6)}
	c.Policy = policy.Model{
		Interfaces: []policy.Interface{
			{ID: 1, Name: "LAN", Device: "lan0", Group: policy.Trusted, Addresses: []netip.Prefix{
				netip.MustParsePrefix("198.18.1.1/24"), netip.MustParsePrefix("fd00:ca7e:1::1/64")}},
			{ID: 2, Name: "DMZ", Device: "dmz0", Group: policy.Other, Addresses: []netip.Prefix{
				netip.MustParsePrefix("198.18.2.1/24"), netip.MustParsePrefix("fd00:ca7e:2::1/64")}},
		},
		Services: []policy.Service{
			port(1, "lab-permit", policy.ProtoTCP, portPermit),
			port(2, "lab-deny", policy.ProtoTCP, portDeny),
			port(3, "lab-drop", policy.ProtoTCP, portDrop),
			port(4, "lab-udp-deny", policy.ProtoUDP, portUDPDen),
			port(5, "lab-bulk", policy.ProtoTCP, portBulk),
			port(6, "lab-iperf", policy.ProtoTCP, portIperf),
			port(7, "lab-iperf-udp", policy.ProtoUDP, portIperf),
		},
		Rules: []policy.Rule{
			{ID: 1, Name: "permit", Enabled: true, Source: src, Destination: dst,
				Services: []string{"lab-permit", "lab-bulk", "lab-iperf", "lab-iperf-udp"}, Action: policy.Permit},
			{ID: 2, Name: "deny", Enabled: true, Source: src, Destination: dst,
				Services: []string{"lab-deny", "lab-udp-deny"}, Action: policy.Deny},
			{ID: 3, Name: "drop", Enabled: true, Source: src, Destination: dst,
				Services: []string{"lab-drop"}, Action: policy.Drop},
			{ID: 4, Name: "to the firewall", Enabled: true, Source: src,
				Destination: []policy.Term{policy.PrefixTerm(netip.MustParsePrefix("198.18.1.1/32"))},
				Services:    []string{"lab-permit"}, Action: policy.Permit},
		},
		DefaultAction: policy.Drop,
	}
	return c
}

func labEngine(t *testing.T) *firewall.Engine {
	t.Helper()
	e, err := labEngineErr()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func labEngineErr() (*firewall.Engine, error) { return labConfig().NewEngine(firewall.Options{}) }

// startPlane starts a plane in the firewall namespace and closes it at cleanup.
func (l *lab) startPlane(t *testing.T, o Options) *Plane {
	t.Helper()
	if o.Engine == nil {
		o.Engine = labEngine(t)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	l.in(t, l.fw, func() error { return p.Start(t.Context()) })
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// serve listens on the server for TCP on addr:port and echoes each connection.
func (l *lab) serve(t *testing.T, addr netip.Addr, port int) {
	t.Helper()
	var ln net.Listener
	l.in(t, l.server, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// dial connects from the client; the error is returned, not fatal.
func (l *lab) dial(t *testing.T, network string, addr netip.Addr, port int, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var derr error
	l.in(t, l.client, func() error {
		c, derr = net.DialTimeout(network, netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
		return nil
	})
	return c, derr
}

// echo sends msg over c and checks it comes back.
func echo(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	n := 0
	for n < len(msg) {
		k, err := c.Read(got[n:])
		if err != nil {
			t.Fatalf("echo: read after %d of %d bytes: %v", n, len(msg), err)
		}
		n += k
	}
	if err := <-errc; err != nil {
		t.Fatalf("echo: write: %v", err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo: got other bytes back")
	}
}

// rulesIn returns what iptables-save, ip6tables-save and nft list ruleset show in
// namespace ns.
func rulesIn(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"nft", "list", "ruleset"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, c...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
		b.Write(out)
	}
	return b.String()
}

func hasKeepstate(rules string) bool {
	return strings.Contains(rules, "KEEPSTATE") || strings.Contains(rules, "keepstate")
}
