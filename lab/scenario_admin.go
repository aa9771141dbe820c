//go:build linux

package lab

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Administration while connections run: a configuration import and a restart
// must not cut them.

func reloadScenario() Scenario {
	return Scenario{
		Name:  "reload",
		Title: "a configuration import during a transfer: the transfer completes, no reset",
		run:   runReload,
	}
}

// The transfer: chunks written at a steady pace for transferTime.
const (
	transferTime  = 3 * time.Second
	transferChunk = 16 << 10
)

func runReload(s *session) error {
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortSink, connectTimeout, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	before, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	type sent struct {
		n   int64
		err error
	}
	done := make(chan sent, 1)
	go func() {
		var total int64
		buf := make([]byte, transferChunk)
		_ = c.SetWriteDeadline(time.Now().Add(transferTime + 30*time.Second))
		for end := time.Now().Add(transferTime); time.Now().Before(end); {
			n, err := c.Write(buf)
			total += int64(n)
			if err != nil {
				done <- sent{total, err}
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- sent{total, nil}
	}()
	s.say("client sends to the sink for %v", transferTime)
	if err := s.sleep(transferTime / 3); err != nil {
		return err
	}
	if err := s.importConfig("reloaded", map[string]string{"ConnLimitPerSource": "100", "TcpEstablishedTimeout": "3600"}); err != nil {
		return err
	}
	w := <-done
	var count int64
	if w.err == nil {
		count, err = SinkCount(c, 10*time.Second)
	} else {
		err = w.err
	}
	s.check("transfer", "the transfer completes: the server received every byte sent",
		err == nil && count == w.n, fmt.Sprintf("sent %d bytes, server counted %d: %s", w.n, count, Outcome(err)))

	s.checkLog("kept.log", "warning.log", "(0 connection(s) closed, 1 kept)")
	st, err := s.d.Status(s.ctx)
	if err != nil {
		return err
	}
	s.check("generation", "the imported configuration is in force",
		st.Config.Generation == 2, fmt.Sprintf("configuration generation %d (%s)", st.Config.Generation, st.Config.Hash))
	after, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	s.check("drops", "keepstate dropped nothing",
		after.Dropped == before.Dropped, fmt.Sprintf("%d packets decided, %d dropped during the transfer (%v)",
			after.Packets-before.Packets, after.Dropped-before.Dropped, after.DropsByReason))
	return nil
}

func restartScenario() Scenario {
	return Scenario{
		Name:  "restart",
		Title: "a daemon restart during a long connection: the connection survives",
		run:   runRestart,
	}
}

// pinger exchanges a message on c every pingEvery until stopped, and remembers
// how many exchanges succeeded, the slowest one and the first error.
type pinger struct {
	mu      sync.Mutex
	ok      int
	slowest time.Duration
	err     error
	stop    chan struct{}
	done    chan struct{}
}

const pingEvery = 100 * time.Millisecond

func startPinger(c net.Conn, timeout time.Duration) *pinger {
	p := &pinger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			t0 := time.Now()
			err := RoundTrip(c, fmt.Sprintf("ping %d\n", i), timeout)
			p.mu.Lock()
			if err != nil {
				p.err = err
			} else {
				p.ok++
				p.slowest = max(p.slowest, time.Since(t0))
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
			select {
			case <-p.stop:
				return
			case <-time.After(pingEvery):
			}
		}
	}()
	return p
}

func (p *pinger) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok
}

func (p *pinger) finish() (ok int, slowest time.Duration, err error) {
	close(p.stop)
	<-p.done
	return p.ok, p.slowest, p.err
}

func runRestart(s *session) error {
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	p := startPinger(c, 30*time.Second)
	defer func() {
		if p != nil {
			p.finish()
		}
	}()
	s.say("client pings the echo service every %v over one connection", pingEvery)
	if err := s.sleep(time.Second); err != nil {
		return err
	}
	// A restart (SIGUSR2, as systemctl restart sends) leaves keepstate's hooks in
	// place: with --fail closed, nothing passes until the next daemon listens.
	t0 := time.Now()
	if err := s.d.StopForRestart(); err != nil {
		return err
	}
	_, statErr := os.Stat(s.d.StatePath())
	s.check("snapshot", "the stopping daemon saves its table", statErr == nil,
		fmt.Sprintf("stopped in %.2f s; snapshot: %v", time.Since(t0).Seconds(), errOr(statErr, s.d.StatePath())))
	probe, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, time.Second, nil)
	if probe != nil {
		probe.Close()
	}
	s.check("down.closed", "while keepstate is down nothing passes (fail closed)",
		Outcome(err) == "timeout", "a new connection: "+Outcome(err))
	if err := s.d.Start(s.ctx); err != nil {
		return err
	}
	gap := time.Since(t0)
	st, err := s.d.Status(s.ctx)
	if err != nil {
		return err
	}
	s.check("restored", "the restarted daemon restores the connection", st.Restored >= 1,
		fmt.Sprintf("down for %.1f s; %d connection(s) restored", gap.Seconds(), st.Restored))
	// The connection must carry on: wait for a few more exchanges.
	target := p.count() + 5
	for deadline := time.Now().Add(30 * time.Second); p.count() < target && time.Now().Before(deadline); {
		if err := s.sleep(50 * time.Millisecond); err != nil {
			return err
		}
	}
	ok, slowest, perr := p.finish()
	p = nil
	s.check("survives", "the connection survives: every exchange answered, the one across the restart late",
		perr == nil && ok >= target, fmt.Sprintf("%d exchanges, slowest %.1f s, error: %s", ok, slowest.Seconds(), Outcome(perr)))
	// Let the log writer flush what the restored connection might have caused.
	if err := s.sleep(1500 * time.Millisecond); err != nil {
		return err
	}
	drops := s.d.LogLines("debug.log", "{pktdrop}")
	s.check("no.drops", "keepstate dropped none of the connection's packets after the restart (debug.log)",
		len(drops) == 0, fmt.Sprintf("%d {pktdrop} line(s)%s", len(drops), firstOf(drops)))
	return nil
}

func firstOf(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ", first: " + lines[0]
}

func errOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}
