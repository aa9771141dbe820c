//go:build linux

package nfqueue

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
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

	t.Run("Deny answers UDP with ICMP unreachable", func(t *testing.T) {
		c, err := l.dial(t, "udp4", serverAddr, portUDPDen, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("knock")); err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(make([]byte, 16))
		// Administratively prohibited is a hard error for a connected UDP socket:
		// Linux reports it as EHOSTUNREACH.
		if !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("read after a denied datagram: %v, want host unreachable", err)
		}
	})

	t.Run("Deny answers UDP over IPv6 with ICMPv6 unreachable", func(t *testing.T) {
		c, err := l.dial(t, "udp6", serverV6, portUDPDen, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("knock")); err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(make([]byte, 16))
		// ICMPv6 administratively prohibited: EACCES for a connected socket.
		if !errors.Is(err, syscall.EACCES) {
			t.Fatalf("read after a denied datagram: %v, want permission denied", err)
		}
	})

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

// abandonQueues closes the plane's queues but leaves its hooks: what the kernel
// sees when keepstate dies.
func (p *Plane) abandonQueues() {
	for _, c := range p.conns {
		_ = c.file.SetReadDeadline(time.Unix(1, 0))
	}
	p.wg.Wait()
	for _, c := range p.conns {
		_ = c.close()
	}
}

// FailOpen: with the daemon gone, the queue bypass lets traffic through; fail
// closed (the default) stops it.
func TestPlaneFailOpenAndClosed(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	l.serve(t, serverAddr, portPermit)
	l.serve(t, serverAddr, portDrop)
	for _, tc := range []struct {
		name     string
		failOpen bool
	}{{"open", true}, {"closed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := l.startPlane(t, Options{Queues: 1, FailOpen: tc.failOpen})
			rules := rulesIn(t, l.fw)
			if got := strings.Contains(rules, "--queue-bypass"); got != tc.failOpen {
				t.Errorf("--queue-bypass in rules = %v, want %v:\n%s", got, tc.failOpen, rules)
			}
			c, err := l.dial(t, "tcp4", serverAddr, portPermit, 5*time.Second)
			if err != nil {
				t.Fatalf("with the plane running: %v", err)
			}
			c.Close()

			p.abandonQueues()
			c, err = l.dial(t, "tcp4", serverAddr, portDrop, time.Second)
			if tc.failOpen {
				if err != nil {
					t.Fatalf("fail open, no listener: a port the rules drop should pass: %v", err)
				}
				c.Close()
			} else {
				if err == nil {
					c.Close()
					t.Fatal("fail closed, no listener: traffic passed")
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("fail closed: %v, want a timeout", err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close after the queues died: %v", err)
			}
			if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
				t.Fatalf("hooks left after Close:\n%s", rules)
			}
		})
	}
}

// A Start that fails leaves nothing behind; a queue held by another plane fails
// Start before anything changes; hooks left by a dead keepstate are replaced.
func TestPlaneStartFailures(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	l.serve(t, serverAddr, portPermit)

	t.Run("nft backend without native queue", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("needs nft")
		}
		p, err := New(Options{Engine: labEngine(t), Queues: 1, Backend: BackendNft})
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		l.in(t, l.fw, func() error { serr = p.Start(t.Context()); return nil })
		if serr == nil {
			// A kernel with nft_queue: nothing to test here.
			p.Close()
			t.Skip("this kernel has the native nft queue expression")
		}
		if !strings.Contains(serr.Error(), "native nftables queue") {
			t.Errorf("error = %v", serr)
		}
		if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
			t.Fatalf("failed Start left hooks:\n%s", rules)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close after failed Start: %v", err)
		}
	})

	t.Run("queue in use", func(t *testing.T) {
		a := l.startPlane(t, Options{Queues: 1, QueueNum: 5})
		before := rulesIn(t, l.fw)
		b, err := New(Options{Engine: labEngine(t), Queues: 2, QueueNum: 4})
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		l.in(t, l.fw, func() error { serr = b.Start(t.Context()); return nil })
		if serr == nil || !strings.Contains(serr.Error(), "in use") || !errors.Is(serr, syscall.EPERM) {
			t.Fatalf("second plane on a busy queue: %v", serr)
		}
		if after := rulesIn(t, l.fw); !sameRules(before, after) {
			t.Errorf("the failed plane changed the rules:\n%s\nbefore:\n%s", after, before)
		}
		// The first plane still works.
		c, err := l.dial(t, "tcp4", serverAddr, portPermit, 5*time.Second)
		if err != nil {
			t.Fatalf("first plane after the second failed: %v", err)
		}
		c.Close()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stale hooks replaced", func(t *testing.T) {
		for _, args := range [][]string{
			{"iptables", "-w", "-N", "KEEPSTATE-FWD"},
			{"iptables", "-w", "-A", "KEEPSTATE-FWD", "-j", "NFQUEUE", "--queue-num", "9"},
			{"iptables", "-w", "-I", "FORWARD", "1", "-j", "KEEPSTATE-FWD"},
			{"iptables", "-w", "-I", "FORWARD", "1", "-j", "KEEPSTATE-FWD"},
			{"ip6tables", "-w", "-t", "raw", "-N", "KEEPSTATE-RAWOUT"},
		} {
			sh(t, "ip", append([]string{"netns", "exec", l.fw}, args...)...)
		}
		p := l.startPlane(t, Options{Queues: 1})
		rules := rulesIn(t, l.fw)
		if strings.Contains(rules, "--queue-num 9") || !strings.Contains(rules, "-A KEEPSTATE-FWD -j NFQUEUE --queue-num 0") ||
			strings.Count(rules, "-A FORWARD -j KEEPSTATE-FWD") != 3 {
			// The stale chain was replaced in place; the two stale iptables
			// jumps stay (the first one queues, the other is never reached),
			// ip6tables got its own.
			t.Errorf("stale hooks not replaced:\n%s", rules)
		}
		c, err := l.dial(t, "tcp4", serverAddr, portPermit, 5*time.Second)
		if err != nil {
			t.Fatalf("after replacing stale hooks: %v", err)
		}
		c.Close()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
			t.Fatalf("hooks left after Close:\n%s", rules)
		}
	})
}

// sameRules compares rule dumps without their timestamp comments and packet
// counters (iptables-save's policy counters, nft's rule counters), which traffic
// changes.
func sameRules(a, b string) bool {
	counters := regexp.MustCompile(`\[\d+:\d+\]|packets \d+ bytes \d+`)
	strip := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if !strings.HasPrefix(line, "#") {
				out = append(out, counters.ReplaceAllString(line, "[]"))
			}
		}
		return strings.Join(out, "\n")
	}
	return strip(a) == strip(b)
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

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(b []byte) (int, error) {
	<-w.release
	return len(b), nil
}

// A worker that cannot keep up: the kernel's queue overflows. Fail closed, the
// kernel drops and counts (queue_dropped); fail open (NFQA_CFG_F_FAIL_OPEN), it
// lets the overflow through uncounted.
func TestPlaneQueueOverflow(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	const port = 7777 // UDP: the default rule drops it
	var udp net.PacketConn
	l.in(t, l.server, func() (err error) {
		udp, err = net.ListenPacket("udp4", netip.AddrPortFrom(serverAddr, port).String())
		return err
	})
	defer udp.Close()
	_ = udp.(*net.UDPConn).SetReadBuffer(8 << 20)
	var received atomic.Int64
	go func() {
		b := make([]byte, 64)
		for {
			if _, _, err := udp.ReadFrom(b); err != nil {
				return
			}
			received.Add(1)
		}
	}()

	for _, tc := range []struct {
		name     string
		failOpen bool
	}{{"closed", false}, {"open", true}} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			released := false
			unblock := func() {
				if !released {
					released = true
					close(release)
				}
			}
			defer unblock()
			eng := labEngine(t)
			// The first drop line blocks the only worker.
			rep := &dataplane.Reporter{Engine: eng, Log: logging.New(logging.Config{
				Debug: logging.Sink{Text: blockingWriter{release}}, Drops: logging.AnyDrop()})}
			p := l.startPlane(t, Options{Engine: eng, Reporter: rep, Queues: 1, FailOpen: tc.failOpen})
			received.Store(0)

			c, err := l.dial(t, "udp4", serverAddr, port, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The packet with the blocked worker still counts in the queue.
			const sent, over = queueMaxLen + 4000, 4000
			for i := 0; i < sent; i++ {
				if _, err := c.Write([]byte("flood")); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			var s Stats
			deadline := time.Now().Add(5 * time.Second)
			for {
				s = p.Stats()
				done := s.QueueDropped >= over
				if tc.failOpen {
					done = received.Load() >= over
				}
				if done || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if s.KernelStatsError != "" {
				t.Fatalf("kernel stats: %s", s.KernelStatsError)
			}
			if s.Waiting != queueMaxLen {
				t.Errorf("waiting %d, want a full queue of %d", s.Waiting, queueMaxLen)
			}
			if tc.failOpen {
				// The server's socket buffer may not hold all of them.
				if got := received.Load(); got == 0 || got > over || s.QueueDropped != 0 {
					t.Errorf("fail open: server got %d of the overflow of %d; queue_dropped %d", got, over, s.QueueDropped)
				}
			} else {
				if s.QueueDropped != over || received.Load() != 0 {
					t.Errorf("fail closed: queue_dropped %d, want %d; server got %d", s.QueueDropped, over, received.Load())
				}
			}
			unblock()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A restart: the first plane detaches and leaves its hooks, fail closed traffic
// stops, the next plane with the same engine (the state a restarting daemon
// restores) takes the hooks over, and a connection opened before goes on.
func TestPlaneRestartKeepsConnections(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	l.serve(t, serverAddr, portPermit)
	eng := labEngine(t)
	a := l.startPlane(t, Options{Engine: eng, Queues: 1})
	c, err := l.dial(t, "tcp4", serverAddr, portPermit, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, []byte("before the restart"))
	if err := a.Detach(); err != nil {
		t.Fatal(err)
	}
	if rules := rulesIn(t, l.fw); !strings.Contains(rules, "-A FORWARD -j KEEPSTATE-FWD") {
		t.Fatalf("Detach removed the hooks:\n%s", rules)
	}
	// Fail closed with nobody listening: nothing new gets through.
	if c2, err := l.dial(t, "tcp4", serverAddr, portPermit, 500*time.Millisecond); err == nil {
		c2.Close()
		t.Fatal("a new connection passed while no plane listened (fail closed)")
	}
	b := l.startPlane(t, Options{Engine: eng, Queues: 1})
	echo(t, c, []byte("after the restart"))
	if s := b.Stats(); s.Accepted == 0 {
		t.Errorf("the second plane saw nothing: %+v", s.Counters)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // after Detach: nothing to do
		t.Fatal(err)
	}
	if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
		t.Fatalf("hooks left after Close:\n%s", rules)
	}
}

// Close returns even when a worker is stuck (here in a Reporter whose log
// writer blocks), and the hooks are gone all the same.
func TestPlaneCloseWithStuckWorker(t *testing.T) {
	needRoot(t)
	l := newLab(t)
	old := stopTimeout
	stopTimeout = 200 * time.Millisecond
	defer func() { stopTimeout = old }()
	release := make(chan struct{})
	eng := labEngine(t)
	rep := &dataplane.Reporter{Engine: eng, Log: logging.New(logging.Config{
		Debug: logging.Sink{Text: blockingWriter{release}}, Drops: logging.AnyDrop()})}
	p := l.startPlane(t, Options{Engine: eng, Reporter: rep, Queues: 1})
	if c, err := l.dial(t, "tcp4", serverAddr, portDrop, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("dropped port connected")
	}
	start := time.Now()
	err := p.Close()
	if err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("Close with a stuck worker: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v", el)
	}
	if rules := rulesIn(t, l.fw); hasKeepstate(rules) {
		t.Fatalf("hooks left after Close:\n%s", rules)
	}
	close(release)
	if err := p.Wait(); err != nil {
		t.Errorf("the released worker ended with %v", err)
	}
}
