package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keepstate/config"
	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/firewall"
)

// startDaemon runs a daemon with a stub plane on a temporary socket, its --config
// a copy of the daemon package's testdata/base.cfg.
func startDaemon(t *testing.T) (sock, cfg string) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "winroute.cfg")
	base, err := os.ReadFile(filepath.Join("..", "..", "daemon", "testdata", "base.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, base, 0o644)
	sock = filepath.Join(dir, "admin.sock")
	d, err := daemon.New(daemon.Options{
		ConfigPath: cfg, LogDir: filepath.Join(dir, "log"), SocketPath: sock, Stderr: &bytes.Buffer{},
		NewPlane: func(*firewall.Engine, *dataplane.Reporter) (daemon.DataPlane, error) {
			return &stubPlane{done: make(chan struct{})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return sock, cfg
}

// TestConfigCommandsTalkToDaemon is the first story's workflow against a running
// keepstate: export, edit, import with a confirmation deadline, confirm.
func TestConfigCommandsTalkToDaemon(t *testing.T) {
	pinMachine(t)
	sock, cfg := startDaemon(t)
	dir := t.TempDir()
	before, _ := os.ReadFile(cfg)

	exported := filepath.Join(dir, "running.tgz")
	code, out, errs := runCLI("config", "export", "--socket", sock, "-o", exported)
	if code != exitOK || !strings.HasPrefix(out, "wrote "+exported+" (") || !strings.Contains(out, "(running configuration ") {
		t.Fatalf("export: exit %d %q %q", code, out, errs)
	}
	b, err := config.LoadBundle(exported)
	if err != nil || b.Host.Hostname != "fw-test" || daemon.ConfigHash(b.Config) == "" {
		t.Fatalf("exported bundle: %v", err)
	}

	// A bad edit, as a bundle folder: refused with the positions of the folder's
	// own file, nothing changed.
	folder := filepath.Join(dir, "edited")
	os.Mkdir(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "winroute.cfg"), []byte("<config>\n<table name=\"SecuritySettings\">\n<variable name=\"Require3WayHandshake\">off</variable>\n</table>\n</config>\n"), 0o644)
	code, out, errs = runCLI("config", "import", folder, "--socket", sock, "--confirm-within", "30s")
	wantErr := folder + "/winroute.cfg:3: Require3WayHandshake: want 0 or 1, got \"off\"\n1 error(s)\n" +
		"keepstate: configuration from " + folder + " refused (1 problem(s)); nothing changed\n" +
		"nothing imported: the running configuration is unchanged\n"
	if code != exitUsage || out != "" || errs != wantErr {
		t.Errorf("bad import: exit %d\nstdout %q\nstderr:\n%s\nwant:\n%s", code, out, errs, wantErr)
	}

	// The good edit, with a deadline.
	os.WriteFile(filepath.Join(folder, "winroute.cfg"), []byte("<config>\n<table name=\"SecuritySettings\">\n<variable name=\"Require3WayHandshake\">0</variable>\n</table>\n</config>\n"), 0o644)
	code, out, errs = runCLI("config", "import", folder, "--socket", sock, "--confirm-within", "30s")
	if code != exitOK || !strings.Contains(out, "imported "+folder+" into the running keepstate: configuration ") ||
		!strings.Contains(out, "settings changed from defaults: Require3WayHandshake=0\n") ||
		!strings.Contains(out, "NOT CONFIRMED: run 'keepstate config confirm' before ") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	if now, _ := os.ReadFile(cfg); !bytes.Equal(now, before) {
		t.Error("--config rewritten before confirmation")
	}
	code, out, _ = runCLI("status", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "awaits 'keepstate config confirm': rolls back to ") {
		t.Errorf("status: %s", out)
	}
	code, out, _ = runCLI("config", "export", "--socket", sock, "-o", filepath.Join(dir, "pending.tgz"))
	if code != exitOK || !strings.Contains(out, "NOT CONFIRMED") {
		t.Errorf("export of a pending change: %q", out)
	}

	code, out, errs = runCLI("config", "confirm", "--socket", sock)
	if code != exitOK || !strings.HasPrefix(out, "confirmed configuration ") || !strings.HasSuffix(out, ", saved to "+cfg+"\n") {
		t.Fatalf("confirm: exit %d %q %q", code, out, errs)
	}
	saved, err := config.Load(cfg)
	if err != nil || saved.Settings.Require3WayHandshake {
		t.Errorf("--config after confirm: %v, Require3WayHandshake=%v", err, saved.Settings.Require3WayHandshake)
	}
	code, _, errs = runCLI("config", "confirm", "--socket", sock)
	if code != exitFail || !strings.Contains(errs, "no configuration change awaits confirmation") {
		t.Errorf("second confirm: exit %d %q", code, errs)
	}

	// Standard output when -o is absent (a pipe here).
	code, out, errs = runCLI("config", "export", "--socket", sock)
	if code != exitOK || !strings.HasPrefix(out, "\x1f\x8b") || !strings.HasPrefix(errs, "wrote ") {
		t.Errorf("export to stdout: exit %d, %d bytes, %q", code, len(out), errs)
	}
}
