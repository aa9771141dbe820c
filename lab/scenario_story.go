//go:build linux

package lab

import (
	"fmt"
	"strings"
	"time"
)

// The two incidents of the README, scaled to seconds.

// handshakeScenario is story 1: the blade switch leaks the client's packets
// around the firewall, which sees only the server's replies. With
// Require3WayHandshake=1 it drops them and logins fail; the administrator imports
// the configuration with 0 and they work.
func handshakeScenario() Scenario {
	return Scenario{
		Name:   "handshake",
		Title:  "the leaked return path (story 1): Require3WayHandshake=1, then 0",
		Bypass: true,
		// Kerio's default for the full drop log: the drop must show anyway.
		Settings: map[string]string{"Require3WayHandshake": "1", "LogDroppedPackets": "0"},
		run:      runHandshake,
	}
}

// connectTimeout is how long a client waits for a connection that the firewall
// silently drops: long enough for a SYN retransmission (1 s) to be dropped too.
const connectTimeout = 3 * time.Second

func runHandshake(s *session) error {
	s.say("client -> server goes around the firewall (byp0); server -> client comes back through it")
	t0 := time.Now()
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, nil)
	took := time.Since(t0)
	if c != nil {
		c.Close()
	}
	s.check("enforced.connect", "with Require3WayHandshake=1 the client's connection fails (its SYN-ACK is dropped)",
		Outcome(err) == "timeout", fmt.Sprintf("connect to %s:%d: %s after %.1f s", ServerAddr, PortEcho, Outcome(err), took.Seconds()))
	s.checkLog("enforced.log", "debug.log", "3-way handshake not completed")
	s.checkDrops("enforced.drops", "handshake_not_completed: ")

	if err := s.importConfig("relaxed", map[string]string{"Require3WayHandshake": "0", "LogDroppedPackets": "0"}); err != nil {
		return err
	}
	before := len(s.d.LogLines("debug.log", "3-way handshake not completed"))
	c, err = Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, nil)
	if err == nil {
		err = RoundTrip(c, "POST /login", connectTimeout)
		c.Close()
	}
	s.check("relaxed.exchange", "with Require3WayHandshake=0 the connection works (picked up mid-stream)",
		err == nil, "connect and echo: "+Outcome(err))
	// Give the log writer time to flush anything the relaxed exchange caused.
	if err := s.sleep(1500 * time.Millisecond); err != nil {
		return err
	}
	after := len(s.d.LogLines("debug.log", "3-way handshake not completed"))
	s.check("relaxed.log", "no new \"3-way handshake not completed\" line",
		after == before, fmt.Sprintf("%d line(s) before the import, %d after", before, after))
	return nil
}

// keepaliveScenario is story 2: a connection idle longer than the firewall's idle
// timeout, whose TCP keep-alives come too late to keep its state, dies; with a
// timeout longer than the keep-alive interval it survives.
func keepaliveScenario() Scenario {
	return Scenario{
		Name:     "keepalive",
		Title:    "TCP keep-alives against the idle timeout (story 2): TcpEstablishedTimeout 2 s, then 8 s",
		Settings: map[string]string{"TcpEstablishedTimeout": "2", "LogDroppedPackets": "0"},
		run:      runKeepalive,
	}
}

// The client's keep-alive, the Oracle server's 2 hours scaled down: the first
// probe after 3 s idle, then every second; three unanswered probes end it.
var labKeepAlive = KeepAlive{Idle: 3 * time.Second, Interval: time.Second, Count: 3}

func runKeepalive(s *session) error {
	ka := labKeepAlive
	s.say("client keep-alive: first probe after %v idle, then every %v, %d unanswered probes end the connection", ka.Idle, ka.Interval, ka.Count)
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, &ka)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if err := RoundTrip(c, "SELECT 1", connectTimeout); err != nil {
		return fmt.Errorf("first exchange: %w", err)
	}
	s.checkOffloaded("short.offloaded", "the idle connection")
	// Idle: the read returns when the kernel gives up on the unanswered probes
	// (about Idle + Count*Interval), or at our own deadline if it never does.
	t0 := time.Now()
	_ = c.SetReadDeadline(t0.Add(ka.Idle + time.Duration(ka.Count+6)*ka.Interval))
	_, err = c.Read(make([]byte, 1))
	idle := time.Since(t0)
	s.check("short.dies", "with a 2 s idle timeout the idle connection dies: its keep-alives are dropped",
		Outcome(err) == "timed out", fmt.Sprintf("idle read: %s after %.1f s", Outcome(err), idle.Seconds()))
	s.checkLog("short.log", "debug.log", "connection state expired")
	s.checkDrops("short.drops", "state_expired: ")

	if err := s.importConfig("longer", map[string]string{"TcpEstablishedTimeout": "8", "LogDroppedPackets": "0"}); err != nil {
		return err
	}
	c2, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, &ka)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c2.Close()
	if err := RoundTrip(c2, "SELECT 1", connectTimeout); err != nil {
		return fmt.Errorf("first exchange: %w", err)
	}
	// Idle longer than the 8 s timeout: only the answered probes keep the state.
	quiet := 10 * time.Second
	t0 = time.Now()
	_ = c2.SetReadDeadline(t0.Add(quiet))
	_, err = c2.Read(make([]byte, 1))
	if Outcome(err) == "timeout" {
		err = RoundTrip(c2, "SELECT 2", connectTimeout)
	}
	s.check("long.survives", fmt.Sprintf("with an 8 s idle timeout the connection survives %v of idleness (its probes refresh the state)", quiet),
		err == nil, fmt.Sprintf("exchange after %.1f s idle: %s", time.Since(t0).Seconds(), Outcome(err)))
	return nil
}

// ruleTimeoutScenario is story 2 fixed narrowly: TcpEstablishedTimeout stays 2 s
// and only the rule to the echo service (the database) gets IdleTimeout=8. With
// the same keep-alives, a connection of that rule survives its idleness while one
// of the other rule (the sink) dies at the global timeout.
func ruleTimeoutScenario() Scenario {
	return Scenario{
		Name:     "rule-timeout",
		Title:    "story 2 fixed on one rule: TcpEstablishedTimeout 2 s, IdleTimeout 8 s on \"LAN to echo\" only",
		Settings: map[string]string{"TcpEstablishedTimeout": "2", "LAN to echo/IdleTimeout": "8"},
		run:      runRuleTimeout,
	}
}

func runRuleTimeout(s *session) error {
	ka := labKeepAlive
	s.say("client keep-alive: first probe after %v idle, then every %v, %d unanswered probes end the connection", ka.Idle, ka.Interval, ka.Count)
	other, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortSink, connectTimeout, &ka)
	if err != nil {
		return fmt.Errorf("connect to the sink: %w", err)
	}
	defer other.Close()
	if _, err := other.Write([]byte("INSERT 1")); err != nil {
		return fmt.Errorf("first write to the sink: %w", err)
	}
	db, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, &ka)
	if err != nil {
		return fmt.Errorf("connect to the echo service: %w", err)
	}
	defer db.Close()
	if err := RoundTrip(db, "SELECT 1", connectTimeout); err != nil {
		return fmt.Errorf("first exchange: %w", err)
	}
	// Both idle at once. The sink answers nothing until EOF: its read returns
	// when the kernel gives up on unanswered probes.
	quiet := 10 * time.Second
	t0 := time.Now()
	_ = other.SetReadDeadline(t0.Add(ka.Idle + time.Duration(ka.Count+6)*ka.Interval))
	_ = db.SetReadDeadline(t0.Add(quiet))
	var otherErr error
	done := make(chan struct{})
	go func() {
		_, otherErr = other.Read(make([]byte, 1))
		close(done)
	}()
	_, err = db.Read(make([]byte, 1))
	if Outcome(err) == "timeout" {
		err = RoundTrip(db, "SELECT 2", connectTimeout)
	}
	<-done
	s.check("rule.survives", fmt.Sprintf("the rule with IdleTimeout=8 keeps its connection through %v of idleness", quiet),
		err == nil, fmt.Sprintf("exchange after %.1f s idle: %s", time.Since(t0).Seconds(), Outcome(err)))
	s.check("other.dies", "a connection of the other rule dies at the global 2 s: its keep-alives are dropped",
		Outcome(otherErr) == "timed out", fmt.Sprintf("idle read on the sink: %s", Outcome(otherErr)))
	lines := s.checkLog("other.log", "debug.log", "connection state expired")
	named, ruleDropped := false, false
	for _, l := range lines {
		named = named || strings.Contains(l, "TcpEstablishedTimeout") && strings.Contains(l, fmt.Sprintf(":%d", PortSink))
		ruleDropped = ruleDropped || strings.Contains(l, "IdleTimeout of rule") || strings.Contains(l, fmt.Sprintf(":%d", PortEcho))
	}
	s.check("other.named", "the drops name TcpEstablishedTimeout on the sink's connection, none the echo rule's",
		named && !ruleDropped, fmt.Sprintf("%d line(s); sink named %v, echo connection dropped %v", len(lines), named, ruleDropped))
	return nil
}

// handshakeRuleScenario is story 1 fixed narrowly: the administrator imports
// Handshake=loose on the rule to the echo service (Tomcat) only. Its connections
// work across the leaked path while those of the other rule (the sink) still fail
// as the handshake is enforced for them.
func handshakeRuleScenario() Scenario {
	return Scenario{
		Name:     "handshake-rule",
		Title:    "story 1 fixed on one rule: Require3WayHandshake=1, Handshake=loose on \"LAN to echo\" only",
		Bypass:   true,
		Settings: map[string]string{"Require3WayHandshake": "1"},
		run:      runHandshakeRule,
	}
}

func runHandshakeRule(s *session) error {
	s.say("client -> server goes around the firewall (byp0); server -> client comes back through it")
	if err := s.importConfig("loose-rule", map[string]string{"Require3WayHandshake": "1", "LAN to echo/Handshake": "loose"}); err != nil {
		return err
	}
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, nil)
	if err == nil {
		err = RoundTrip(c, "POST /login", connectTimeout)
		c.Close()
	}
	s.check("rule.exchange", "the loose rule's connection works (picked up from the server's side)",
		err == nil, "connect and echo: "+Outcome(err))
	t0 := time.Now()
	c, err = Dial(s.ctx, s.topo.Client, ServerAddr, PortSink, connectTimeout, nil)
	if c != nil {
		c.Close()
	}
	s.check("other.connect", "a connection of the other rule still fails: its SYN-ACK is dropped",
		Outcome(err) == "timeout", fmt.Sprintf("connect to %s:%d: %s after %.1f s", ServerAddr, PortSink, Outcome(err), time.Since(t0).Seconds()))
	lines := s.checkLog("other.log", "debug.log", "3-way handshake not completed")
	sink, echoed := false, false
	for _, l := range lines {
		sink = sink || strings.Contains(l, fmt.Sprintf(":%d ->", PortSink))
		echoed = echoed || strings.Contains(l, fmt.Sprintf(":%d ->", PortEcho))
	}
	s.check("other.named", "the handshake drops are the sink's, none the echo rule's",
		sink && !echoed, fmt.Sprintf("%d line(s); sink %v, echo %v", len(lines), sink, echoed))
	return nil
}
