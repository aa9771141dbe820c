//go:build linux

package lab

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"keepstate/daemon"
)

// Every kind of stop and start keeps established connections: a live connection
// sends a line every 250 ms across the stop, and every line must come back intact
// and in order, with strict handshakes on and nothing refused before let in.

// stopCase is one kind of stop and start.
type stopCase struct {
	name, title string
	kind        stopKind
	fail        string            // --fail
	settings    map[string]string // of the configuration
}

type stopKind int

const (
	stopTerm      stopKind = iota // SIGTERM, keepstate run again a second later
	stopUSR2                      // SIGUSR2 (a stop for a restart), again a second later
	stopSystemctl                 // systemctl restart with dist/keepstate.service
	stopKill                      // SIGKILL (the OOM killer); systemd starts it again
	stopPanic                     // a panic; systemd starts it again
)

// crash reports whether the stop gives the daemon no chance to save its table.
func (k stopKind) crash() bool { return k == stopKill || k == stopPanic }

// underSystemd reports whether the stop is one systemd restarts from the unit.
func (k stopKind) underSystemd() bool { return k >= stopSystemctl }

var (
	sigtermStop = stopCase{name: "sigterm", kind: stopTerm, fail: "open",
		title: "SIGTERM, start a second later (fail open: traffic passes unfiltered meanwhile): the connection carries on"}
	usr2Stop = stopCase{name: "restart", kind: stopUSR2,
		title: "SIGUSR2 (a stop for a restart), start a second later: the connection carries on"}
	systemctlStop = stopCase{name: "systemctl", kind: stopSystemctl,
		title: "systemctl restart of dist/keepstate.service: the connection carries on"}
	sigkillStop = stopCase{name: "sigkill", kind: stopKill, settings: map[string]string{"RecoverAfterCrashSeconds": "30"},
		title: "SIGKILL, systemd starts it again: the connections carry on, also one the last snapshot missed (RecoverAfterCrashSeconds)"}
	panicStop = stopCase{name: "panic", kind: stopPanic,
		title: "a panic, systemd starts it again: the connection carries on"}
)

// moreStopScenarios are the stop scenarios only the tests run: the other fail
// mode of the stops the lab shows.
func moreStopScenarios() []Scenario {
	return []Scenario{
		stopScenario(stopCase{name: "sigterm-closed", kind: stopTerm,
			title: "SIGTERM, start a second later (fail closed: nothing passes meanwhile): the connection carries on"}),
		stopScenario(stopCase{name: "sigkill-open", kind: stopKill, fail: "open",
			title: "SIGKILL with fail open (traffic passes meanwhile), systemd starts it again: the connection carries on"}),
	}
}

func stopScenario(c stopCase) Scenario {
	if c.fail == "" {
		c.fail = "closed"
	}
	return Scenario{Name: c.name, Title: c.title, Settings: c.settings, Fail: c.fail,
		Unit: c.kind.underSystemd(), Fault: c.kind == stopPanic,
		run: func(s *session) error { return runStop(s, c) }}
}

// linesAfter is how many more lines must come back after the start.
const linesAfter = 8

func runStop(s *session, c stopCase) error {
	old, err := s.dialLiner()
	if err != nil {
		return err
	}
	s.say("client sends a line every %v to the echo service over one connection (port %d)", LineEvery, old.port)
	if err := s.sleep(1500 * time.Millisecond); err != nil {
		return err
	}
	s.checkOffloaded("offloaded", "the connection")
	var young *liveConn
	if c.kind.crash() {
		// Nothing is saved at a crash: what comes back is the last periodic
		// snapshot, so it must have been written since the connection opened.
		info, err := s.waitCheckpoint(old.opened)
		if err != nil {
			return err
		}
		s.say("the periodic snapshot of %s holds %d connection(s)", info.Last.Format("15:04:05.000"), info.LastConnections)
		if c.settings["RecoverAfterCrashSeconds"] != "" {
			if young, err = s.dialLiner(); err != nil {
				return err
			}
			s.say("a second connection (port %d) opens after that snapshot", young.port)
			if err := s.sleep(600 * time.Millisecond); err != nil {
				return err
			}
		}
	}

	t0 := time.Now()
	var sneak net.Conn
	switch c.kind {
	case stopTerm:
		err = s.d.Stop()
		s.check("stopped", "SIGTERM stops keepstate cleanly, its table saved", err == nil && s.said("saved "), "exit: "+errOr(err, "status 0"))
	case stopUSR2:
		err = s.d.StopForRestart()
		s.check("stopped", "SIGUSR2 stops keepstate cleanly, its table saved and its hooks left", err == nil && s.said("stopping for a restart: hooks left in place"),
			"exit: "+errOr(err, "status 0"))
	case stopSystemctl:
		err = s.d.SystemctlRestart(s.ctx)
		s.check("restarted", "systemctl restart: the unit's RestartKillSignal stops keepstate with its hooks left, ExecStart starts it again",
			err == nil && s.said("stopping for a restart: hooks left in place"), errOr(err, "restarted in "+since(t0)))
	case stopKill, stopPanic:
		sig, want := syscall.SIGKILL, "killed by SIGKILL"
		if c.kind == stopPanic {
			sig, want = syscall.SIGUSR1, "exit status 2 after a panic"
		}
		ws, err := s.d.Crash(sig)
		got := exitWords(ws)
		ok := err == nil && (ws.Signaled() && ws.Signal() == syscall.SIGKILL) == (c.kind == stopKill)
		if c.kind == stopPanic {
			ok = ok && ws.Exited() && ws.ExitStatus() == 2 && strings.Contains(s.d.Output(), "panic: keepstate: fault injection")
		}
		s.check("crashed", "keepstate ends without saving anything: "+want, ok, got)
	}
	if err != nil && c.kind != stopKill && c.kind != stopPanic {
		return err
	}

	if !c.kind.underSystemd() || c.kind.crash() {
		// While it is down: closed drops everything, open lets everything pass.
		probe, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, time.Second, nil)
		if c.fail == "closed" {
			if probe != nil {
				probe.Close()
			}
			s.check("down.closed", "while keepstate is down nothing passes (fail closed)", Outcome(err) == "timeout", "a new connection: "+Outcome(err))
		} else {
			sneak = probe
			if err == nil {
				err = RoundTrip(probe, "unfiltered\n", time.Second)
			}
			s.check("down.open", "while keepstate is down traffic passes unfiltered (fail open)", err == nil, "a new connection: "+Outcome(err))
		}
		switch {
		case c.kind.crash():
			err = s.d.AutoRestart(s.ctx)
			s.check("restarted", "systemd starts keepstate again (Restart=on-failure, RestartSec)", err == nil, errOr(err, "started again after "+since(t0)))
			if err != nil {
				return err
			}
		default:
			if err := s.sleep(time.Second); err != nil {
				return err
			}
			if err := s.d.Start(s.ctx); err != nil {
				return err
			}
		}
	}
	st, err := s.d.Status(s.ctx)
	if err != nil {
		return err
	}
	s.check("restored", "the new keepstate restores the connection from --state", st.Restored >= 1,
		fmt.Sprintf("down for %s; %d connection(s) restored", since(t0), st.Restored))
	s.check("unclean", "the new keepstate knows whether the stop was clean", st.UncleanStart == c.kind.crash(),
		fmt.Sprintf("unclean start: %v", st.UncleanStart))

	// The lines carry on.
	target := old.l.Echoed() + linesAfter
	for deadline := time.Now().Add(40 * time.Second); old.l.Echoed() < target && old.l.Err() == nil && time.Now().Before(deadline); {
		if err := s.sleep(50 * time.Millisecond); err != nil {
			return err
		}
	}
	if sneak != nil {
		// Opened while keepstate was out of the path: its handshake was never
		// seen, so strict mode does not let it in now.
		err := RoundTrip(sneak, "after the start\n", 2*time.Second)
		sneak.Close()
		s.check("sneak.refused", "a connection opened while keepstate was down is not let in after the start (strict handshake)",
			Outcome(err) == "timeout", "its next line: "+Outcome(err))
	}
	list, err := s.d.Conns(s.ctx)
	if err != nil {
		return err
	}
	conn := findConn(&list, old.port)
	s.check("conn", "the connection is tracked as it was: ESTABLISHED, handshake seen, its rule",
		conn != nil && conn.State == "ESTABLISHED" && conn.Assured && conn.Rule == "LAN to echo", describeConn(conn))
	res := old.l.Finish(10 * time.Second)
	s.check("lines", "every line sent came back intact and in order: no reset, no lost byte", res.OK() && res.Echoed >= target, res.String())
	ports := []int{old.port}
	if young != nil {
		ports = append(ports, young.port)
		res := young.l.Finish(10 * time.Second)
		s.check("young.lines", "the connection the snapshot missed carries on too", res.OK(), res.String())
		s.checkLog("young.log", "warning.log", fmt.Sprintf(":%d > %s:%d picked up mid-stream after an unclean start", young.port, ServerAddr, PortEcho))
	}
	// Let the log writer flush what the connections might have caused.
	if err := s.sleep(1200 * time.Millisecond); err != nil {
		return err
	}
	var drops []string
	for _, p := range ports {
		// "10.201.1.2:PORT -> ..." and "... -> 10.201.1.2:PORT,"
		drops = append(drops, s.d.LogLines("debug.log", ":"+strconv.Itoa(p)+" ")...)
		drops = append(drops, s.d.LogLines("debug.log", ":"+strconv.Itoa(p)+",")...)
	}
	s.check("no.drops", "keepstate dropped none of the live connections' packets (debug.log)",
		len(drops) == 0, fmt.Sprintf("%d {pktdrop} line(s)%s", len(drops), firstOf(drops)))
	return nil
}

// liveConn is a Liner on a connection of its own.
type liveConn struct {
	l      *Liner
	port   int
	opened time.Time
}

func (s *session) dialLiner() (*liveConn, error) {
	opened := time.Now()
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, connectTimeout, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &liveConn{l: StartLiner(c), port: c.LocalAddr().(*net.TCPAddr).Port, opened: opened}, nil
}

// waitCheckpoint waits for a periodic snapshot written after t.
func (s *session) waitCheckpoint(t time.Time) (daemon.SnapshotInfo, error) {
	deadline := time.Now().Add(3*daemon.DefaultStateInterval + 5*time.Second)
	for {
		st, err := s.d.Status(s.ctx)
		if err != nil {
			return daemon.SnapshotInfo{}, err
		}
		if info := st.Snapshot; info != nil && info.Last.After(t) && info.LastConnections > 0 {
			return *info, nil
		}
		if time.Now().After(deadline) {
			return daemon.SnapshotInfo{}, errors.New("no periodic snapshot was written")
		}
		if err := s.sleep(100 * time.Millisecond); err != nil {
			return daemon.SnapshotInfo{}, err
		}
	}
}

// said reports whether the daemon printed substr (over all its starts).
func (s *session) said(substr string) bool { return strings.Contains(s.d.Output(), substr) }

func since(t time.Time) string { return fmt.Sprintf("%.1f s", time.Since(t).Seconds()) }

func findConn(l *daemon.ConnList, port int) *daemon.Conn {
	for i := range l.Conns {
		if c := &l.Conns[i]; int(c.SrcPort) == port && c.Proto == "TCP" {
			return c
		}
	}
	return nil
}

func describeConn(c *daemon.Conn) string {
	if c == nil {
		return "not in the table"
	}
	return fmt.Sprintf("%s, assured %v, rule %q, %d/%d packets", c.State, c.Assured, c.Rule, c.PacketsOrig, c.PacketsReply)
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
