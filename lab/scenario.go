//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keepstate/capture"
	"keepstate/daemon"
)

// Scenario is one story replayed in the lab.
type Scenario struct {
	Name  string // handshake, keepalive, ...
	Title string // one line for the report
	// Bypass: the topology has the one-way path around the firewall.
	Bypass bool
	// Settings of the configuration the daemon starts with.
	Settings map[string]string
	// Fail is the daemon's --fail (default closed).
	Fail string
	// Unit: the daemon runs as dist/keepstate.service has systemd run it.
	Unit bool
	// Fault: the daemon is a faultinject build (Env.FaultBinary).
	Fault bool
	run   func(s *session) error
}

// Scenarios returns every scenario in the order `keepstate lab` runs them.
func Scenarios() []Scenario {
	return []Scenario{
		handshakeScenario(), handshakeRuleScenario(), keepaliveScenario(), ruleTimeoutScenario(),
		reloadScenario(), denyScenario(), limitScenario(),
		stopScenario(sigtermStop), stopScenario(usr2Stop), stopScenario(systemctlStop),
		stopScenario(sigkillStop), stopScenario(panicStop),
	}
}

// Find returns the scenario called name: one of Scenarios, or one of the
// further stop scenarios only the tests run (TestStops).
func Find(name string) (Scenario, bool) {
	for _, sc := range append(Scenarios(), moreStopScenarios()...) {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// Env is where and how scenarios run.
type Env struct {
	Binary string    // the keepstate executable to run as the daemon
	Dir    string    // parent of each scenario's files; empty: a temporary folder removed afterwards
	Out    io.Writer // the running commentary; nil: none
	Prefix string    // namespace name prefix (default DefaultPrefix)
	// FaultBinary is a faultinject build of keepstate (go build -tags
	// faultinject), for the scenarios that crash the daemon from inside; without
	// it they are skipped.
	FaultBinary string
}

// Result is what a scenario saw.
type Result struct {
	Name, Title string
	Checks      []Check
	Dir         string        // the scenario's files (logs/, configurations), when Env.Dir was given
	Err         error         // the scenario could not run to its end (setup failed, interrupted)
	Skipped     string        // why the scenario could not run here; it neither passed nor failed
	Duration    time.Duration // wall time, setup and teardown included
	// DaemonOutput is what `keepstate run` printed (on failure, the reason).
	DaemonOutput string
}

// Check is one expectation: what should happen, what did.
type Check struct {
	ID   string // stable name tests look up, e.g. "enforced.connect"
	Want string
	Got  string
	OK   bool
}

// Passed reports whether the scenario ran to its end and every check held.
func (r *Result) Passed() bool {
	if r.Err != nil || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Check returns the check with the given id.
func (r *Result) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Run runs one scenario: topology, configuration, daemon, server, the story,
// teardown (also when ctx is cancelled or a step fails).
func Run(ctx context.Context, env Env, sc Scenario) (res *Result) {
	start := time.Now()
	res = &Result{Name: sc.Name, Title: sc.Title}
	s := &session{ctx: ctx, env: env, res: res, out: env.Out}
	if s.out == nil {
		s.out = io.Discard
	}
	defer func() {
		s.teardown()
		res.Duration = time.Since(start)
		s.say("%s (%.1f s)", verdictWord(res), res.Duration.Seconds())
	}()
	fmt.Fprintf(s.out, "== %s: %s\n", sc.Name, sc.Title)
	if sc.Fault && env.FaultBinary == "" {
		res.Skipped = "needs a faultinject build of keepstate (make demo builds bin/keepstate-faultinject; keepstate lab --fault-binary PATH)"
		s.say("skipped: %s", res.Skipped)
		return res
	}
	if err := s.setup(sc); err != nil {
		res.Err = err
		s.say("could not set up: %v", err)
		return res
	}
	err := sc.run(s)
	switch {
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		s.say("interrupted")
	case err != nil:
		res.Err = err
		s.say("stopped: %v", err)
	}
	return res
}

func verdictWord(r *Result) string {
	switch {
	case r.Skipped != "":
		return "SKIP"
	case r.Passed():
		return "PASS"
	}
	return "FAIL"
}

// session is one scenario being run.
type session struct {
	ctx    context.Context
	env    Env
	res    *Result
	out    io.Writer
	dir    string
	tmpDir bool
	topo   *Topology
	d      *Daemon
	srv    *Server
}

func (s *session) setup(sc Scenario) error {
	if s.env.Dir != "" {
		s.dir = filepath.Join(s.env.Dir, sc.Name)
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		s.res.Dir = s.dir
	} else {
		// Short: the admin socket's path must fit in 108 bytes.
		dir, err := os.MkdirTemp("", "kslab-")
		if err != nil {
			return err
		}
		s.dir, s.tmpDir = dir, true
	}
	topo, err := New(s.ctx, Options{Prefix: s.env.Prefix, Bypass: sc.Bypass})
	if err != nil {
		return err
	}
	s.topo = topo
	cfg, err := WriteConfig(s.dir, "start", sc.Settings)
	if err != nil {
		return err
	}
	if s.srv, err = StartServer(topo.Server); err != nil {
		return err
	}
	o := DaemonOptions{Binary: s.env.Binary, Dir: s.dir, Config: cfg, Fail: sc.Fail}
	if sc.Fault {
		o.Binary = s.env.FaultBinary
	}
	if sc.Unit {
		if o.Unit, err = KeepstateUnit(); err != nil {
			return err
		}
	}
	s.d, err = StartDaemon(s.ctx, topo, o)
	if err != nil {
		return err
	}
	st, err := s.d.Status(s.ctx)
	if err != nil {
		return err
	}
	s.say("keepstate run in namespace %s (%s, fail %s): %s", topo.Firewall, st.Backend, st.FailMode, settingsWords(sc.Settings))
	return nil
}

func (s *session) teardown() {
	if s.srv != nil {
		s.srv.Close()
	}
	if s.d != nil {
		if err := s.d.Stop(); err != nil {
			s.say("stopping keepstate: %v", err)
		}
		s.res.DaemonOutput = s.d.Output()
	}
	if s.topo != nil {
		if err := s.topo.Close(); err != nil {
			s.say("teardown: %v", err)
			s.res.Err = errors.Join(s.res.Err, err)
		}
	}
	if s.tmpDir {
		os.RemoveAll(s.dir)
	}
}

// say prints one line of commentary.
func (s *session) say(format string, a ...any) {
	fmt.Fprintf(s.out, "   "+format+"\n", a...)
}

// check records an expectation and prints it.
func (s *session) check(id, want string, ok bool, got string) {
	if s.ctx.Err() != nil {
		return // interrupted: what was seen since says nothing about keepstate
	}
	s.res.Checks = append(s.res.Checks, Check{ID: id, Want: want, Got: got, OK: ok})
	word := "ok"
	if !ok {
		word = "UNEXPECTED"
	}
	s.say("%-10s %s: %s", word, want, got)
}

// checkLog waits for a line containing substr in log file name, records it as a
// check and prints the first matching line.
func (s *session) checkLog(id, name, substr string) []string {
	lines := s.d.WaitLog(s.ctx, name, substr, logWait)
	got := "no such line"
	if len(lines) > 0 {
		got = fmt.Sprintf("%d line(s), first: %s", len(lines), lines[0])
	}
	s.check(id, fmt.Sprintf("%s says %q", name, substr), len(lines) > 0, got)
	return lines
}

// checkDrops waits for a packet in the daemon's drops.pcapng whose comment
// starts with prefix (its reason id), as an administrator would open it while
// keepstate runs, and records it as a check.
func (s *session) checkDrops(id, prefix string) {
	path := filepath.Join(s.d.LogDir(), daemon.DropsFile)
	got := "no such packet"
	deadline := time.Now().Add(logWait)
	for ok := false; !ok && time.Now().Before(deadline) && s.ctx.Err() == nil; {
		n, first := dropsWith(path, prefix)
		if ok = n > 0; ok {
			got = fmt.Sprintf("%d packet(s), first: %s", n, first)
		} else if s.sleep(100*time.Millisecond) != nil {
			break
		}
	}
	s.check(id, fmt.Sprintf("%s holds the dropped packets (%q...)", daemon.DropsFile, prefix), got != "no such packet", got)
}

// dropsWith counts the packets of the capture at path whose comment starts
// with prefix, and returns the first comment.
func dropsWith(path, prefix string) (int, string) {
	r, err := capture.Open(path)
	if err != nil {
		return 0, ""
	}
	defer r.Close()
	n, first := 0, ""
	for {
		p, err := r.Next()
		if err != nil {
			return n, first
		}
		if strings.HasPrefix(string(p.Comment), prefix) {
			if n == 0 {
				first = string(p.Comment)
			}
			n++
		}
	}
}

// logWait bounds the wait for a log line: the daemon's log writer flushes within
// about a second.
const logWait = 5 * time.Second

// writeConfig writes a further configuration of the scenario into its folder.
func (s *session) writeConfig(name string, settings map[string]string) (string, error) {
	return WriteConfig(s.dir, name, settings)
}

// importConfig imports settings into the running daemon with `keepstate config import`.
func (s *session) importConfig(name string, settings map[string]string) error {
	path, err := s.writeConfig(name, settings)
	if err != nil {
		return err
	}
	out, err := s.d.Import(s.ctx, path)
	if err != nil {
		return err
	}
	s.say("keepstate config import %s: %s", settingsWords(settings), firstLine(out))
	return nil
}

func settingsWords(settings map[string]string) string {
	if len(settings) == 0 {
		return "lab configuration, settings at their defaults"
	}
	var w []string
	for _, k := range sortedKeys(settings) {
		w = append(w, k+"="+settings[k])
	}
	return strings.Join(w, " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// checkOffloaded checks, when the daemon runs its kernel fast path, that it
// holds a connection (what names it), so that what the scenario checks next holds for an offloaded connection. Without a fast path
// (a kernel that refuses it, --fast-path off) there is nothing to check.
func (s *session) checkOffloaded(id, what string) {
	st, err := s.d.Stats(s.ctx)
	if err != nil || st.Plane.FastPath == nil {
		return
	}
	f := st.Plane.FastPath
	s.check(id, what+" is held by the kernel fast path", f.Offloaded >= 1,
		fmt.Sprintf("%d connection(s) offloaded, %d packets accepted in the kernel", f.Offloaded, f.Packets))
}

// sleep waits d or until the scenario is interrupted.
func (s *session) sleep(d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}
