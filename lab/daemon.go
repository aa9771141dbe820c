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
}

// Daemon is `keepstate run` running in the firewall namespace of a topology.
type Daemon struct {
	topo *Topology
	o    DaemonOptions

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
	starts int
}

// Paths of the daemon's files.
func (d *Daemon) LogDir() string    { return filepath.Join(d.o.Dir, "logs") }
func (d *Daemon) Socket() string    { return filepath.Join(d.o.Dir, "admin.sock") }
func (d *Daemon) StatePath() string { return filepath.Join(d.o.Dir, "conntrack.snap") }

// readyTimeout bounds how long a starting daemon may take to answer on its socket.
const readyTimeout = 20 * time.Second

// StartDaemon starts keepstate in t's firewall namespace and returns once it
// answers status on its admin socket.
func StartDaemon(ctx context.Context, t *Topology, o DaemonOptions) (*Daemon, error) {
	if o.Fail == "" {
		o.Fail = "closed"
	}
	d := &Daemon{topo: t, o: o, stderr: &lockedBuffer{}}
	return d, d.Start(ctx)
}

// Start starts the daemon again after Stop (a restart keeps the same files).
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("lab: daemon already running")
	}
	if err := os.MkdirAll(d.LogDir(), 0o700); err != nil {
		return err
	}
	args := []string{"netns", "exec", d.topo.Firewall, d.o.Binary, "run",
		"--config", d.o.Config, "--log-dir", d.LogDir(), "--state", d.StatePath(),
		"--socket", d.Socket(), "--fail", d.o.Fail}
	args = append(args, d.o.Args...)
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
	go func() { _ = cmd.Wait(); close(done) }()
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
	if d.cmd == nil {
		return nil
	}
	cmd, done := d.cmd, d.done
	d.cmd = nil
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("keepstate run did not stop within %v after %v; killed", stopTimeout, sig)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("keepstate run exited with status %d: %s", code, d.stderr.String())
	}
	return nil
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
