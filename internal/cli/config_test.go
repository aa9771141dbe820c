package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pinMachine makes exports independent of the machine running the tests.
func pinMachine(t *testing.T) {
	saved := machineInfo
	machineInfo = func() (string, string, []string) { return "fw-test", "linux/amd64", []string{"eth0", "eth1", "lo"} }
	t.Cleanup(func() { machineInfo = saved })
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigCheck(t *testing.T) {
	story := filepath.Join("..", "..", "config", "testdata", "story1.cfg")
	code, out, errs := runCLI("config", "check", story)
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	want := "ok: " + story + ": 4 interface(s), 5 rule(s) (4 enabled), 3 address group(s), 4 service(s), default action Drop; settings changed from defaults: DefaultAction=Drop, LogDroppedPackets=1\n"
	if out != want {
		t.Errorf("stdout %q\nwant   %q", out, want)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "winroute.cfg")
	os.WriteFile(bad, []byte(`<config>
<table name="ConnTrack">
  <variable name="TcpEstablishedTimout">9000</variable>
</table>
<table name="SecuritySettings">
  <variable name="Require3WayHandshake">no</variable>
</table>
</config>
`), 0o644)
	code, out, errs = runCLI("config", "check", bad)
	if code != exitUsage || out != "" {
		t.Errorf("exit %d stdout %q", code, out)
	}
	wantErr := bad + `:3: unknown setting "TcpEstablishedTimout" (did you mean TcpEstablishedTimeout?)` + "\n" +
		bad + `:6: Require3WayHandshake: want 0 or 1, got "no"` + "\n2 error(s)\n"
	if errs != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, wantErr)
	}

	keepalive := filepath.Join(dir, "short.cfg")
	os.WriteFile(keepalive, []byte("<config>\n<table name=\"ConnTrack\">\n<variable name=\"TcpEstablishedTimeout\">3600</variable>\n</table>\n</config>\n"), 0o644)
	code, _, errs = runCLI("config", "check", keepalive)
	if code != exitOK || !strings.HasPrefix(errs, keepalive+":3: warning: TcpEstablishedTimeout 3600 s is below") {
		t.Errorf("exit %d stderr %q", code, errs)
	}

	if code, _, _ := runCLI("config", "check", filepath.Join(dir, "missing.cfg")); code != exitFail {
		t.Errorf("missing file: exit %d, want %d", code, exitFail)
	}
}

// TestConfigExportImportExport is the workflow of the first incident: export, edit
// one line, import, export again; nothing but that line changes, and an untouched
// round trip is byte for byte the same.
func TestConfigExportImportExport(t *testing.T) {
	pinMachine(t)
	dir := t.TempDir()
	first := filepath.Join(dir, "first.tgz")
	code, out, errs := runCLI("config", "export", "--default", "-o", first)
	if code != exitOK {
		t.Fatalf("export: exit %d %s", code, errs)
	}
	if !strings.HasPrefix(out, "wrote "+first+" (") {
		t.Errorf("export stdout %q", out)
	}
	etc := filepath.Join(dir, "etc")
	if code, _, errs := runCLI("config", "import", first, "--dir", etc); code != exitOK {
		t.Fatalf("import: exit %d %s", code, errs)
	}
	second := filepath.Join(dir, "second.tgz")
	if code, _, errs := runCLI("config", "export", "--config", etc, "-o", second); code != exitOK {
		t.Fatalf("export --config: exit %d %s", code, errs)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !bytes.Equal(a, b) {
		t.Error("export -> import -> export is not byte-identical")
	}

	// The administrator's edit: Require3WayHandshake 1 -> 0 in the installed file.
	cfgPath := filepath.Join(etc, "winroute.cfg")
	text, _ := os.ReadFile(cfgPath)
	edited := bytes.Replace(text, []byte(`<variable name="Require3WayHandshake">1</variable>`), []byte(`<variable name="Require3WayHandshake">0</variable>`), 1)
	if bytes.Equal(edited, text) {
		t.Fatal("exported winroute.cfg lacks the Require3WayHandshake line")
	}
	os.WriteFile(cfgPath, edited, 0o644)
	code, out, _ = runCLI("config", "check", etc)
	if code != exitOK || !strings.HasSuffix(out, "settings changed from defaults: Require3WayHandshake=0\n") {
		t.Errorf("check after edit: exit %d %q", code, out)
	}
}

func TestConfigImportRefusesBadAndChangesNothing(t *testing.T) {
	pinMachine(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	good := filepath.Join(dir, "good.tgz")
	runCLI("config", "export", "--default", "-o", good)
	runCLI("config", "import", good, "--dir", etc)
	before, _ := os.ReadFile(filepath.Join(etc, "winroute.cfg"))

	bad := filepath.Join(dir, "winroute.cfg")
	os.WriteFile(bad, []byte(`<config><list name="TrafficRules_v2"><listitem><variable name="Name">r</variable><variable name="Action">Permit</variable><variable name="Service">HTTPS;Telnet</variable></listitem></list></config>`), 0o644)
	code, out, errs := runCLI("config", "import", bad, "--dir", etc)
	if code != exitUsage || out != "" {
		t.Errorf("exit %d stdout %q", code, out)
	}
	if want := bad + `:1: no service "Telnet"` + "\n1 error(s)\nnothing imported: " + etc + " unchanged\n"; errs != want {
		t.Errorf("stderr %q\nwant   %q", errs, want)
	}
	after, _ := os.ReadFile(filepath.Join(etc, "winroute.cfg"))
	if !bytes.Equal(before, after) {
		t.Error("a refused import changed winroute.cfg")
	}

	// An interface bound to a device this machine lacks imports with a warning.
	withDev := filepath.Join(dir, "dev.cfg")
	os.WriteFile(withDev, []byte(`<config><list name="Interfaces"><listitem><variable name="Name">LAN</variable><variable name="Group">Trusted</variable><variable name="Device">eth7</variable></listitem></list></config>`), 0o644)
	code, _, errs = runCLI("config", "import", withDev, "--dir", etc)
	if code != exitOK || errs != "warning: interface \"LAN\" uses device \"eth7\", which this machine does not have\n" {
		t.Errorf("exit %d stderr %q", code, errs)
	}
}

func TestConfigUsage(t *testing.T) {
	for _, args := range [][]string{
		{"config"},
		{"config", "frob"},
		{"config", "check"},
		{"config", "export", "--default", "stray"},
		{"config", "export", "--socket", "/nonexistent.sock", "--default"},
		{"config", "import", "x.cfg", "--socket", "/nonexistent.sock", "--dir", "/tmp"},
		{"config", "import", "x.cfg", "--dir", "/tmp", "--confirm-within", "30s"},
		{"config", "confirm", "extra"},
		{"config", "export", "--default", "--config", "x", "-o", "y.tgz"},
		{"config", "import"},
	} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
