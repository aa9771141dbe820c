package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/insight"
	"keepstate/packet"
)

// injector is a daemon's data plane in a test: packets handed to it go through
// the engine and the reporter, as a worker sends them.
type injector struct {
	stubPlane
	mu  sync.Mutex
	eng *firewall.Engine
	rep *dataplane.Reporter
	p   packet.Parsed
}

func (in *injector) synAck(t *testing.T, client string) {
	t.Helper()
	frame := packet.AppendTCP(nil, packet.TCPSpec{Src: netip.MustParseAddrPort("10.2.0.5:8080"), Dst: netip.MustParseAddrPort(client),
		Seq: 5000, Ack: 1001, Flags: packet.SYN | packet.ACK, Window: 65535})
	in.mu.Lock()
	defer in.mu.Unlock()
	now := time.Now().UnixNano()
	d := in.eng.Decide(frame, packet.LinkRaw, -1, now, &in.p)
	in.rep.Packet(now, frame, packet.LinkRaw, &in.p, &d)
}

// startInjectedDaemon is startDaemon with a plane the test feeds.
func startInjectedDaemon(t *testing.T) (sock, cfg string, in *injector) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "winroute.cfg")
	base, err := os.ReadFile(filepath.Join("..", "..", "daemon", "testdata", "base.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, base, 0o644)
	sock = filepath.Join(dir, "admin.sock")
	in = &injector{stubPlane: stubPlane{done: make(chan struct{})}}
	d, err := daemon.New(daemon.Options{
		ConfigPath: cfg, LogDir: filepath.Join(dir, "log"), SocketPath: sock, Stderr: &bytes.Buffer{},
		NewPlane: func(eng *firewall.Engine, rep *dataplane.Reporter) (daemon.DataPlane, error) {
			in.eng, in.rep = eng, rep
			return in, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return sock, cfg, in
}

// waitCLI runs the command until its stdout contains want.
func waitCLI(t *testing.T, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs := runCLI(args...)
		if code == exitOK && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: exit %d, want %q in:\n%s%s", args, code, want, out, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInsightsCommands(t *testing.T) {
	pinMachine(t)
	sock, cfg, in := startInjectedDaemon(t)
	code, out, _ := runCLI("insights", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "no open insight") {
		t.Fatalf("before: exit %d\n%s", code, out)
	}
	// --follow sees the insight open.
	ctx, cancel := context.WithCancel(context.Background())
	var buf bytes.Buffer
	fout := &lockedWriter{w: &buf}
	read := func() string {
		fout.mu.Lock()
		defer fout.mu.Unlock()
		return buf.String()
	}
	followed := make(chan int)
	go func() {
		followed <- followInsights(ctx, &env{stdout: fout, stderr: fout}, sock, true, 20*time.Millisecond)
	}()
	time.Sleep(100 * time.Millisecond) // the follower has read the empty list

	in.synAck(t, "10.1.0.2:40000")
	in.synAck(t, "10.1.0.3:40001")
	out = waitCLI(t, "[critical] asymmetric_path asym-", "insights", "--socket", sock)
	for _, want := range []string{
		"1 open insight(s)",
		"10.2.0.5:8080 answers 10.1.0.0/24 on 2 connections whose requests never crossed the firewall",
		"keepstate explain --config " + cfg + " 'tcp 10.2.0.5:8080 > 10.1.0.2:40000 flags S. seq 5000 ack 1001 iface Servers'",
		"fix 1 (rule): Handshake=loose on rule 'LAN to web' only",
		`@@ <variable name="Name">LAN to web</variable>`,
		`+      <variable name="Handshake">loose</variable>`,
		"fix 2 (global): Require3WayHandshake=0",
		`+    <variable name="Require3WayHandshake">0</variable>`,
		"apply fix 1: keepstate insights apply asym-",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("insights lacks %q:\n%s", want, out)
		}
	}
	var res daemon.InsightsResult
	code, js, _ := runCLI("insights", "--socket", sock, "--json")
	if code != exitOK || json.Unmarshal([]byte(js), &res) != nil || len(res.Insights) != 1 {
		t.Fatalf("--json: exit %d\n%s", code, js)
	}
	id := res.Insights[0].ID

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(read(), `"event":"opened"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if c := <-followed; c != exitOK {
		t.Errorf("follow: exit %d", c)
	}
	var ch insight.Change
	line, _, _ := strings.Cut(strings.TrimSpace(read()), "\n")
	if err := json.Unmarshal([]byte(line), &ch); err != nil || ch.Event != "opened" || ch.Insight.ID != id {
		t.Errorf("follow printed %q (%v)", read(), err)
	}

	code, out, _ = runCLI("insights", "show", id, "--socket", sock)
	if code != exitOK || !strings.Contains(out, "[critical] asymmetric_path "+id+" (open)") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI("insights", "show", "asym-nope", "--socket", sock); code != exitFail || !strings.Contains(errs, `no insight "asym-nope"`) {
		t.Errorf("show unknown: exit %d %s", code, errs)
	}

	code, out, errs := runCLI("insights", "apply", id, "--socket", sock, "--confirm-within", "2m")
	if code != exitOK || !strings.Contains(out, "insight "+id+": Handshake=loose on rule 'LAN to web' only (rule) is in force as configuration ") ||
		!strings.Contains(out, "unless you run: keepstate config confirm") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("status", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "from insight "+id) {
		t.Errorf("status after apply:\n%s", out)
	}
	// The rule's fix is in force: what is left to propose is the global one.
	code, out, _ = runCLI("insights", "show", id, "--socket", sock)
	if code != exitOK || strings.Contains(out, "Handshake=loose") || !strings.Contains(out, "fix 1 (global): Require3WayHandshake=0") {
		t.Errorf("show after the fix:\n%s", out)
	}
	if code, _, errs := runCLI("insights", "apply", id, "--fix", "5", "--socket", sock); code != exitFail || !strings.Contains(errs, "there is no fix 5") {
		t.Errorf("apply fix 5: exit %d %s", code, errs)
	}
}
