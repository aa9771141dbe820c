package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/firewall"
)

// stubPlane is a data plane that moves no packet: `keepstate run` is tested here
// for its flags, signals and socket; the daemon's own tests feed packets.
type stubPlane struct{ done chan struct{} }

func (p *stubPlane) Start(context.Context) error { return nil }
func (p *stubPlane) Close() error {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	return nil
}
func (p *stubPlane) Detach() error            { detachedPlanes.Add(1); return p.Close() }
func (p *stubPlane) Wait() error              { <-p.done; return nil }
func (p *stubPlane) Backend() string          { return "stub" }
func (p *stubPlane) Stats() daemon.PlaneStats { return daemon.PlaneStats{Backend: "stub"} }

// detachedPlanes counts stub planes stopped for a restart.
var detachedPlanes atomic.Int32

// stubPlanes replaces the NFQUEUE plane and returns what `run` asked of it.
func stubPlanes(t *testing.T) func() planeOptions {
	var mu sync.Mutex
	var got planeOptions
	saved, savedListen, savedState := newPlane, defaultAdminListen, defaultWebStateDir
	defaultAdminListen, defaultWebStateDir = "127.0.0.1:0", t.TempDir()
	newPlane = func(o planeOptions) daemon.PlaneFactory {
		mu.Lock()
		got = o
		mu.Unlock()
		return func(*firewall.Engine, *dataplane.Reporter) (daemon.DataPlane, error) {
			return &stubPlane{done: make(chan struct{})}, nil
		}
	}
	t.Cleanup(func() { newPlane, defaultAdminListen, defaultWebStateDir = saved, savedListen, savedState })
	return func() planeOptions {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestRunSignals runs `keepstate run` in-process: the admin commands reach it,
// SIGHUP reloads the configuration file, SIGTERM stops it cleanly with the
// snapshot written and the socket gone.
func TestRunSignals(t *testing.T) {
	po := stubPlanes(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "winroute.cfg")
	base, err := os.ReadFile(filepath.Join("..", "..", "daemon", "testdata", "base.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, base, 0o644)
	sock := filepath.Join(dir, "admin.sock")
	state := filepath.Join(dir, "state.snap")

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := runCLI("run", "--config", cfg, "--log-dir", filepath.Join(dir, "log"), "--socket", sock,
			"--state", state, "--queue", "7", "--queues", "2", "--fail", "open", "--input", "--backend", "iptables")
		done <- result{code, out, errs}
	}()
	waitFor(t, "the admin socket", func() bool { return daemonRunning(sock) })
	got := po()
	got.stderr = nil // where the fast path's choice is said: the daemon's
	if want := (planeOptions{queue: 7, queues: 2, failOpen: true, input: true, backend: "iptables", fanout: "hash", fastPath: "auto"}); got != want {
		t.Errorf("plane options %+v, want %+v", got, want)
	}

	code, out, errs := runCLI("status", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "backend      stub, fail open\n") || !strings.Contains(out, "pending      none\n") {
		t.Errorf("status: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("conntrack", "list", "--socket", sock, "proto", "tcp")
	if code != exitOK || out != "0 of 0 connection(s) matched\n" {
		t.Errorf("conntrack list: exit %d %q", code, out)
	}
	code, out, _ = runCLI("stats", "--socket", sock, "--json")
	var st daemon.Stats
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || st.Plane.Backend != "stub" {
		t.Errorf("stats --json: exit %d %s", code, out)
	}

	// SIGHUP: the file changed on disk, the daemon picks it up.
	timeout, _ := os.ReadFile(filepath.Join("..", "..", "daemon", "testdata", "timeout.cfg"))
	os.WriteFile(cfg, timeout, 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload", func() bool {
		var s daemon.Status
		return daemon.Call(context.Background(), sock, &daemon.Request{Cmd: daemon.CmdStatus}, &s) == nil && s.Config.Generation == 2
	})

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on SIGTERM")
	}
	if r.code != exitOK {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"keepstate: running: backend stub, fail open",
		"TcpEstablishedTimeout=9000",
		"saved 0 connection(s) to " + state,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("run's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("no snapshot: %v", err)
	}
	if daemonRunning(sock) {
		t.Error("socket left behind")
	}
	if code, _, errs := runCLI("status", "--socket", sock); code != exitFail || !strings.Contains(errs, "keepstate is not running") {
		t.Errorf("status after stop: exit %d %q", code, errs)
	}
}

// TestRunRestartSignal: SIGUSR2 stops for a restart, leaving the hooks.
func TestRunRestartSignal(t *testing.T) {
	stubPlanes(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "winroute.cfg")
	base, _ := os.ReadFile(filepath.Join("..", "..", "daemon", "testdata", "base.cfg"))
	os.WriteFile(cfg, base, 0o644)
	sock := filepath.Join(dir, "admin.sock")
	done := make(chan string, 1)
	before := detachedPlanes.Load()
	go func() {
		_, _, errs := runCLI("run", "--config", cfg, "--log-dir", dir, "--socket", sock)
		done <- errs
	}()
	waitFor(t, "the admin socket", func() bool { return daemonRunning(sock) })
	syscall.Kill(os.Getpid(), syscall.SIGUSR2)
	select {
	case errs := <-done:
		if !strings.Contains(errs, "keepstate: stopping for a restart: hooks left in place until the next start (fail closed)") {
			t.Errorf("stderr:\n%s", errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on SIGUSR2")
	}
	if n := detachedPlanes.Load() - before; n != 1 {
		t.Errorf("%d plane(s) detached, want 1", n)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	stubPlanes(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "winroute.cfg")
	os.WriteFile(bad, []byte("<config>\n<table name=\"ConnTrack\">\n<variable name=\"TcpEstablishedTimout\">9000</variable>\n</table>\n</config>\n"), 0o644)
	code, _, errs := runCLI("run", "--config", bad, "--log-dir", dir, "--socket", filepath.Join(dir, "s"))
	want := bad + ":3: unknown setting \"TcpEstablishedTimout\" (did you mean TcpEstablishedTimeout?)\n1 error(s)\n" +
		"keepstate: run: the configuration does not load; nothing started\n"
	if code != exitRunConfig || errs != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errs, want)
	}
	for _, args := range [][]string{
		{"run", "--fail", "maybe"},
		{"run", "--queue", "70000"},
		{"run", "extra"},
		{"run", "--state-interval", "1ms"},
	} {
		if code, _, _ := runCLI(args...); code != exitRunUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitRunUsage)
		}
	}
}
