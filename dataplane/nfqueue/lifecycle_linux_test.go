//go:build linux

package nfqueue

import (
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
