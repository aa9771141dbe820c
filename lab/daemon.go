//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"keepstate/daemon"
)

// DaemonOptions say how to run `keepstate run` in the firewall namespace.
type DaemonOptions struct {
	Binary string // the keepstate executable
	Dir    string // holds logs/, admin.sock and conntrack.snap
	Config string // --config
	Fail   string // --fail: "open" or "closed" (default closed)
	Args   []string
	// Unit, when set, runs the daemon as this systemd unit has systemd run it:
	// its ExecStart with the unit's paths moved into Dir (run/, state/, log/)
	// and --config replaced by Config; Fail replaces the unit's --fail; Args are
	// then not used.
	Unit *Unit
}

// Daemon is `keepstate run` running in the firewall namespace of a topology.
type Daemon struct {
	topo *Topology
	o    DaemonOptions

	paths                     unitPaths
	logDir, socket, statePath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	exitMu sync.Mutex         // not mu: Start and stopLocked wait for the exit under mu
	exit   syscall.WaitStatus // how the last process ended, under exitMu
	stderr *lockedBuffer
	starts int
}

// CPUTime is the CPU time the running daemon's threads have used so far, to the
// nanosecond (the sum of /proc/PID/task/*/schedstat; ip netns exec execs keepstate
// in place, so the child is it); 0 when it is not running. Threads that have
// already exited are not counted (the runtime keeps its threads).
func (d *Daemon) CPUTime() time.Duration {
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", cmd.Process.Pid))
	var total time.Duration
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		total += time.Duration(ns)
	}
	return total
}

// Paths of the daemon's files.
func (d *Daemon) LogDir() string    { return d.logDir }
func (d *Daemon) Socket() string    { return d.socket }
func (d *Daemon) StatePath() string { return d.statePath }

// readyTimeout bounds how long a starting daemon may take to answer on its socket.
const readyTimeout = 20 * time.Second

// StartDaemon starts keepstate in t's firewall namespace and returns once it
// answers status on its admin socket.
func StartDaemon(ctx context.Context, t *Topology, o DaemonOptions) (*Daemon, error) {
	if o.Fail == "" {
		o.Fail = "closed"
	}
	d := &Daemon{topo: t, o: o, stderr: &lockedBuffer{},
		logDir: filepath.Join(o.Dir, "logs"), socket: filepath.Join(o.Dir, "admin.sock"), statePath: filepath.Join(o.Dir, "conntrack.snap")}
	if u := o.Unit; u != nil {
		d.paths = unitPaths{binary: o.Binary, config: o.Config, dir: o.Dir, fail: o.Fail}
		d.logDir, d.socket, d.statePath = u.flag(d.paths, "log-dir"), u.flag(d.paths, "socket"), u.flag(d.paths, "state")
		if d.logDir == "" || d.socket == "" || d.statePath == "" {
			return nil, errors.New("lab: the unit's ExecStart lacks --log-dir, --socket or --state")
		}
	}
	return d, d.Start(ctx)
}

// Start starts the daemon again after Stop (a restart keeps the same files).
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("lab: daemon already running")
	}
	var args []string
	if u := d.o.Unit; u != nil {
		if err := u.makeDirs(d.paths); err != nil {
			return err
		}
		args = append([]string{"netns", "exec", d.topo.Firewall, d.o.Binary}, u.args(d.paths)...)
	} else {
		if err := os.MkdirAll(d.LogDir(), 0o700); err != nil {
			return err
		}
		args = []string{"netns", "exec", d.topo.Firewall, d.o.Binary, "run",
			"--config", d.o.Config, "--log-dir", d.LogDir(), "--state", d.StatePath(),
			"--socket", d.Socket(), "--fail", d.o.Fail}
		args = append(args, d.o.Args...)
	}
	// Not CommandContext: the daemon must get SIGTERM and write its snapshot,
	// never SIGKILL from a cancelled context.
	cmd := exec.Command("ip", args...)
	// Its own process group: a Ctrl-C at the terminal reaches the lab, which
	// then stops the daemon in order (SIGTERM, snapshot); and SIGTERM if the lab
	// dies without doing so.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	d.starts++
	fmt.Fprintf(d.stderr, "--- start %d: ip %s\n", d.starts, strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = d.stderr, d.stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		d.exitMu.Lock()
		d.exit = ws
		d.exitMu.Unlock()
		close(done)
	}()
	d.cmd, d.done = cmd, done

	deadline := time.Now().Add(readyTimeout)
	for {
		var st daemon.Status
		err := d.call(ctx, &daemon.Request{Cmd: daemon.CmdStatus}, &st)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			d.cmd = nil
			return fmt.Errorf("keepstate run exited at start: %s", d.stderr.String())
		case <-ctx.Done():
			d.stopLocked(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stopLocked(syscall.SIGTERM)
			return fmt.Errorf("keepstate run did not answer on %s within %v: %v\n%s", d.Socket(), readyTimeout, err, d.stderr.String())
		}
	}
}

// Stop sends SIGTERM and waits for the daemon to remove its hooks and write its
// snapshot (SIGKILL after stopTimeout). Safe to call when not running.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked(syscall.SIGTERM)
}

// StopForRestart sends SIGUSR2, what `systemctl restart` sends: the daemon writes
// its snapshot but leaves its hooks, so that until the next one starts the fail
// mode decides (closed: forwarded packets wait in vain and are retransmitted).
func (d *Daemon) StopForRestart() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked(syscall.SIGUSR2)
}

const stopTimeout = 15 * time.Second

func (d *Daemon) stopLocked(sig syscall.Signal) error {
	ws, err := d.endLocked(sig, stopTimeout)
	if err != nil {
		return err
	}
	if d.o.Unit != nil {
		if err := d.o.Unit.removeRuntime(d.paths, false); err != nil {
			return err
		}
	}
	if ws.Exited() && ws.ExitStatus() != 0 || ws.Signaled() {
		return fmt.Errorf("keepstate run ended with %s: %s", exitWords(ws), d.stderr.String())
	}
	return nil
}

// endLocked sends sig and waits up to timeout for the process to end, then kills
// it (what systemd's SendSIGKILL does after TimeoutStopSec). It returns how the
// process ended.
func (d *Daemon) endLocked(sig syscall.Signal, timeout time.Duration) (syscall.WaitStatus, error) {
	if d.cmd == nil {
		return 0, nil
	}
	cmd, done := d.cmd, d.done
	d.cmd = nil
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("keepstate run did not stop within %v after %v; killed", timeout, sig)
	}
	d.exitMu.Lock()
	defer d.exitMu.Unlock()
	return d.exit, err
}

func exitWords(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + signalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// Crash ends the daemon with sig the way a crash does: SIGKILL as the OOM killer
// sends it, or a signal that makes a faultinject build panic. Nothing is checked of
// how it ended; it returns how.
func (d *Daemon) Crash(sig syscall.Signal) (syscall.WaitStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endLocked(sig, stopTimeout)
}

// SystemctlRestart does what `systemctl restart` does with the unit: the
// unit's RestartKillSignal (else KillSignal) to the main process, SIGKILL after
// TimeoutStopSec, the runtime directory removed (RuntimeDirectoryPreserve=no),
// and ExecStart again at once.
func (d *Daemon) SystemctlRestart(ctx context.Context) error {
	u := d.o.Unit
	if u == nil {
		return errors.New("lab: not run from a unit")
	}
	d.mu.Lock()
	ws, err := d.endLocked(u.RestartKillSignal, u.TimeoutStop)
	if err == nil {
		err = u.removeRuntime(d.paths, true)
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.stderr, "--- systemctl restart: %s ended with %s\n", signalName(u.RestartKillSignal), exitWords(ws))
	return d.Start(ctx)
}

// AutoRestart does what systemd does when the main process ended by itself (a
// crash, SIGKILL, a panic): it applies the unit's Restart= and
// RestartPreventExitStatus= to how it ended, waits RestartSec and starts it
// again, or says why systemd would leave it down.
func (d *Daemon) AutoRestart(ctx context.Context) error {
	u := d.o.Unit
	if u == nil {
		return errors.New("lab: not run from a unit")
	}
	d.exitMu.Lock()
	ws := d.exit
	d.exitMu.Unlock()
	if ok, why := u.restartsAfter(ws); !ok {
		return fmt.Errorf("systemd would leave keepstate down after %s: %s", exitWords(ws), why)
	}
	if err := u.removeRuntime(d.paths, true); err != nil {
		return err
	}
	select {
	case <-time.After(u.RestartDelay):
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(d.stderr, "--- Restart=%s after %s, RestartSec=%v\n", u.Restart, exitWords(ws), u.RestartDelay)
	return d.Start(ctx)
}

// Output is what the daemon wrote on stdout and stderr over all its starts.
func (d *Daemon) Output() string { return d.stderr.String() }

func (d *Daemon) call(ctx context.Context, req *daemon.Request, result any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return daemon.Call(ctx, d.Socket(), req, result)
}

// Status asks the running daemon for its status.
func (d *Daemon) Status(ctx context.Context) (daemon.Status, error) {
	var st daemon.Status
	return st, d.call(ctx, &daemon.Request{Cmd: daemon.CmdStatus}, &st)
}

// Stats asks the running daemon for its counters.
func (d *Daemon) Stats(ctx context.Context) (daemon.Stats, error) {
	var st daemon.Stats
	return st, d.call(ctx, &daemon.Request{Cmd: daemon.CmdStats}, &st)
}

// Conns lists the daemon's tracked connections.
func (d *Daemon) Conns(ctx context.Context) (daemon.ConnList, error) {
	var l daemon.ConnList
	return l, d.call(ctx, &daemon.Request{Cmd: daemon.CmdConntrackList}, &l)
}

// Import runs `keepstate config import --socket SOCKET PATH` as an administrator
// would, and returns what it printed.
func (d *Daemon) Import(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, d.o.Binary, "config", "import", "--socket", d.Socket(), path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("keepstate config import %s: %w", path, err)
		if said := strings.TrimSpace(string(out)); said != "" {
			err = fmt.Errorf("%w: %s", err, said)
		}
		return string(out), err
	}
	return string(out), nil
}

// LogLines returns the lines of log file name (e.g. "debug.log") that contain
// substr, in order.
func (d *Daemon) LogLines(name, substr string) []string {
	data, err := os.ReadFile(filepath.Join(d.LogDir(), name))
	if err != nil {
		return nil
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, substr) {
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	return lines
}

// WaitLog polls log file name until a line contains substr or timeout passes;
// it returns the matching lines. Log files are written through a buffer that the
// daemon flushes within a second or so.
func (d *Daemon) WaitLog(ctx context.Context, name, substr string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		if lines := d.LogLines(name, substr); len(lines) > 0 || time.Now().After(deadline) {
			return lines
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lockedBuffer collects a child's output written from two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Unhook runs `keepstate unhook` in the firewall namespace, as an administrator
// takes a stopped keepstate out of the path: with --fail closed its hooks stay
// after a stop, dropping what they queue.
func (d *Daemon) Unhook(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", d.topo.Firewall, d.o.Binary, "unhook", "--socket", d.Socket()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("keepstate unhook: %w: %s", err, out)
	}
	return nil
}
