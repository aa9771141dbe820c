//go:build linux

package nfqueue

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"keepstate/dataplane"
	"keepstate/logging"
)

// The live path end to end: real sockets through a Plane in the firewall namespace.
func TestPlaneForwardsDeniesDrops(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	l.serve(t, serverAddr, portPermit)
	l.serve(t, serverAddr, portDeny)
	l.serve(t, serverAddr, portDrop)
	l.serve(t, serverV6, portPermit)
	l.serve(t, serverV6, portDeny)

	var debugLog bytes.Buffer // written by the workers, read after Close
	eng := labEngine(t)
	rep := &dataplane.Reporter{Engine: eng, Log: logging.New(logging.Config{
		Debug: logging.Sink{Text: &debugLog}, Drops: logging.AnyDrop(), Location: time.UTC})}
	p := l.startPlane(t, Options{Engine: eng, Reporter: rep, Queues: 2})
	if got, want := p.Backend(), describeIptables; got != want {
		// These machines have no native nft queue: auto must fall back.
		t.Errorf("Backend() = %q, want %q", got, want)
	}
	rules := rulesIn(t, l.fw)
	for _, want := range []string{
		"-A FORWARD -j KEEPSTATE-FWD",
		"-A KEEPSTATE-FWD -j NFQUEUE --queue-balance 0:1",
		"-A PREROUTING -j KEEPSTATE-RAW",
		"-A KEEPSTATE-RAW -m addrtype --dst-type UNICAST -j NOTRACK",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}

	t.Run("permitted TCP works", func(t *testing.T) {
		for _, dst := range []struct {
			name string
			net  string
		}{{"ipv4", "tcp4"}, {"ipv6", "tcp6"}} {
			addr := serverAddr
			if dst.net == "tcp6" {
				addr = serverV6
			}
			c, err := l.dial(t, dst.net, addr, portPermit, 5*time.Second)
			if err != nil {
				t.Fatalf("%s: dial permitted port: %v", dst.name, err)
			}
			echo(t, c, []byte("hello through keepstate"))
			echo(t, c, bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB: GSO super-packets
			c.Close()
		}
	})

	t.Run("Deny answers RST", func(t *testing.T) {
		for _, addr := range []struct {
			net  string
			host string
		}{{"tcp4", "v4"}, {"tcp6", "v6"}} {
			dst := serverAddr
			if addr.net == "tcp6" {
				dst = serverV6
			}
			start := time.Now()
			c, err := l.dial(t, addr.net, dst, portDeny, 5*time.Second)
			if err == nil {
				c.Close()
				t.Fatalf("%s: dial to a denied port succeeded", addr.host)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("%s: dial to a denied port: %v, want connection refused", addr.host, err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("%s: refused after %v, want an immediate RST", addr.host, el)
			}
		}
	})

	// Administratively prohibited is a hard error for a connected UDP socket:
	// Linux reports ICMP's as EHOSTUNREACH and ICMPv6's as EACCES.
	for _, tc := range []struct {
		name, network string
		addr          netip.Addr
		want          error
	}{
		{"Deny answers UDP with ICMP unreachable", "udp4", serverAddr, syscall.EHOSTUNREACH},
		{"Deny answers UDP over IPv6 with ICMPv6 unreachable", "udp6", serverV6, syscall.EACCES},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := l.dial(t, tc.network, tc.addr, portUDPDen, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write([]byte("knock")); err != nil {
				t.Fatal(err)
			}
			if _, err = c.Read(make([]byte, 16)); !errors.Is(err, tc.want) {
				t.Fatalf("read after a denied datagram: %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("kernel conntrack bypassed", func(t *testing.T) {
		// The NOTRACK rules saw the forwarded packets of both families.
		for _, tool := range []string{"iptables-save", "ip6tables-save"} {
			out := sh(t, "ip", "netns", "exec", l.fw, tool, "-c", "-t", "raw")
			m := regexp.MustCompile(`\[(\d+):\d+\] -A KEEPSTATE-RAW -m addrtype --dst-type UNICAST -j NOTRACK`).FindStringSubmatch(out)
			if m == nil || m[1] == "0" {
				t.Errorf("%s: NOTRACK rule not hit:\n%s", tool, out)
			}
		}
	})

	t.Run("Drop is silent", func(t *testing.T) {
		start := time.Now()
		c, err := l.dial(t, "tcp4", serverAddr, portDrop, time.Second)
		if err == nil {
			c.Close()
			t.Fatal("dial to a dropped port succeeded")
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("dial to a dropped port: %v, want a timeout", err)
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Errorf("dial failed after %v, want the full timeout", el)
		}
	})

	s := p.Stats()
	t.Logf("stats: %+v", s.Counters)
	if s.Packets == 0 || s.Accepted == 0 || s.Rejected < 4 || s.Dropped == 0 || s.Answers < 4 {
		t.Errorf("stats do not show the traffic: %+v", s.Counters)
	}
	if s.Packets != s.Accepted+s.Dropped+s.Rejected {
		t.Errorf("packets %d != accepted %d + dropped %d + rejected %d", s.Packets, s.Accepted, s.Dropped, s.Rejected)
	}
	if s.NetlinkErrors != 0 || s.SocketOverflows != 0 || s.KernelStatsError != "" {
		t.Errorf("errors: netlink %d overflows %d kernel stats %q", s.NetlinkErrors, s.SocketOverflows, s.KernelStatsError)
	}
	if s.GSO == 0 {
		t.Errorf("no GSO packet seen in a 1 MiB transfer: %+v", s.Counters)
	}
	if len(s.Queues) != 2 || s.Queues[0].Queue != 0 || s.Queues[1].Queue != 1 {
		t.Errorf("queues = %+v", s.Queues)
	}
	if s.VerdictMessages >= s.Packets {
		t.Logf("no batching gain: %d verdict messages for %d packets", s.VerdictMessages, s.Packets)
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
		t.Fatalf("hooks left after Close:\n%s", rules)
	}
	// Every decided packet went to the Reporter: the drops are in the debug log
	// with the rule, the ingress interface and the TCP details.
	rep.Log.Flush()
	logText := debugLog.String()
	for _, want := range []string{
		"{pktdrop} packet dropped: Traffic rule: deny (from LAN, proto:TCP",
		"{pktdrop} packet dropped: Traffic rule: drop (from LAN, proto:TCP",
		"{pktdrop} packet dropped: Traffic rule: deny (from LAN, proto:UDP",
		"198.18.2.2:8082",
		"flags:[ SYN ]",
	} {
		if !strings.Contains(logText, want) {
			t.Errorf("debug log lacks %q:\n%s", want, logText)
		}
	}
	// Without the plane the kernel forwards everything again.
	c, err := l.dial(t, "tcp4", serverAddr, portDrop, 5*time.Second)
	if err != nil {
		t.Fatalf("after Close, plain forwarding: %v", err)
	}
	c.Close()
}

// Input: traffic addressed to the firewall itself goes through the engine too
// (INPUT and OUTPUT hooks), loopback does not.
func TestPlaneInput(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	fwAddr := netip.MustParseAddr("198.18.1.1")
	var lns []net.Listener
	listen := func(addr string) {
		l.in(t, l.fw, func() error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			lns = append(lns, ln)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { defer c.Close(); b := make([]byte, 1024); n, _ := c.Read(b); c.Write(b[:n]) }()
				}
			}()
			return nil
		})
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	listen("198.18.1.1:8080")
	listen("198.18.1.1:8082")
	listen("127.0.0.1:8082")

	p := l.startPlane(t, Options{Queues: 1, Input: true})
	rules := rulesIn(t, l.fw)
	for _, want := range []string{"-A INPUT -j KEEPSTATE-IN", "-A OUTPUT -j KEEPSTATE-OUT", "-A KEEPSTATE-IN -i lo -j RETURN"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q", want)
		}
	}

	c, err := l.dial(t, "tcp4", fwAddr, portPermit, 5*time.Second)
	if err != nil {
		t.Fatalf("permitted connection to the firewall: %v", err)
	}
	echo(t, c, []byte("to the firewall itself"))
	c.Close()

	if c, err := l.dial(t, "tcp4", fwAddr, portDrop, time.Second); err == nil {
		c.Close()
		t.Fatal("the default rule should drop this connection to the firewall")
	}

	var lerr error
	l.in(t, l.fw, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8082", 2*time.Second)
		if err != nil {
			lerr = err
			return nil
		}
		return c.Close()
	})
	if lerr != nil {
		t.Errorf("loopback inside the firewall must not be queued: %v", lerr)
	}

	s := p.Stats()
	if s.Accepted == 0 || s.Dropped == 0 {
		t.Errorf("stats: %+v", s.Counters)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
		t.Fatalf("hooks left after Close:\n%s", rules)
	}
}
