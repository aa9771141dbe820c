package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"keepstate/synth"
)

func writeStory1(t *testing.T) (capPath, strictCfg, looseCfg string) {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	if _, err := synth.WriteStory1(&buf); err != nil {
		t.Fatal(err)
	}
	capPath = filepath.Join(dir, "story1.pcapng")
	if err := os.WriteFile(capPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strict bool
		path   *string
	}{{true, &strictCfg}, {false, &looseCfg}} {
		text, _ := synth.Story1Config(c.strict)
		*c.path = filepath.Join(dir, map[bool]string{true: "strict.cfg", false: "loose.cfg"}[c.strict])
		if err := os.WriteFile(*c.path, text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return capPath, strictCfg, looseCfg
}

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestReplayCommandJSON(t *testing.T) {
	capPath, strictCfg, _ := writeStory1(t)
	drops := filepath.Join(t.TempDir(), "drops.pcapng")
	code, out, errOut := run("replay", "--config", strictCfg, capPath, "--json", "--drops", drops)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum struct {
		Packets, Accepted, Dropped, Connections uint64
		DropsByReason                           map[string]uint64 `json:"drops_by_reason"`
		Insights                                []struct {
			Kind, Summary, Severity string
			Count                   uint64
			Evidence                struct {
				Samples []struct{ Packet, Reason, Explain string }
			}
			Fix []struct{ Scope, Title, Diff string }
		}
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if sum.Dropped != 36 || sum.DropsByReason["handshake_not_completed"] != 36 || sum.Packets != sum.Accepted+sum.Dropped {
		t.Errorf("summary %+v", sum)
	}
	// The detectors name the leak, with the evidence and the fix.
	if len(sum.Insights) != 1 {
		t.Fatalf("%d insights, want 1: %+v", len(sum.Insights), sum.Insights)
	}
	in := sum.Insights[0]
	if in.Kind != "asymmetric_path" || in.Severity != "critical" || in.Count != 36 ||
		!strings.HasPrefix(in.Summary, "10.2.0.2:8080 answers 10.1.0.0/24 on 12 connections whose requests never crossed the firewall") ||
		len(in.Evidence.Samples) == 0 || in.Evidence.Samples[0].Reason != "handshake_not_completed" ||
		!strings.Contains(in.Evidence.Samples[0].Explain, "--capture "+capPath+" --packet ") || len(in.Fix) == 0 ||
		!strings.Contains(in.Fix[len(in.Fix)-1].Diff, `+    <variable name="Require3WayHandshake">0</variable>`) {
		t.Errorf("insight: %+v", in)
	}
	// The logs go to stderr so that stdout stays one JSON object.
	if !strings.Contains(errOut, "{pktdrop} packet dropped: 3-way handshake not completed (from DMZ") {
		t.Errorf("stderr lacks the debug lines:\n%s", errOut)
	}
	if fi, err := os.Stat(drops); err != nil || fi.Size() < 36*60 {
		t.Errorf("drop capture: %v, %v", fi, err)
	}
}

func TestReplayCommandTruncated(t *testing.T) {
	capPath, _, _ := writeStory1(t)
	raw, _ := os.ReadFile(capPath)
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	os.WriteFile(cut, raw[:len(raw)/2], 0o644)
	code, out, errOut := run("replay", "--quiet", cut)
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(errOut, "stopped at byte offset") || !strings.Contains(out, "packets") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

func TestReplayCommandBadConfig(t *testing.T) {
	capPath, _, _ := writeStory1(t)
	bad := filepath.Join(t.TempDir(), "bad.cfg")
	os.WriteFile(bad, []byte("<config>\n<table name=\"SecuritySettings\">\n<variable name=\"Require3WayHandshak\">0</variable>\n</table>\n</config>\n"), 0o644)
	code, _, errOut := run("replay", "--config", bad, capPath)
	if code != exitUsage || !strings.Contains(errOut, "bad.cfg:3:") || !strings.Contains(errOut, "Require3WayHandshake") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

// The drop capture opens in tshark with each packet's reason as its comment.
func TestReplayDropsReadableByTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian package tshark); the drop capture is checked against it where present")
	}
	capPath, strictCfg, _ := writeStory1(t)
	drops := filepath.Join(t.TempDir(), "drops.pcapng")
	if code, _, errOut := run("replay", "--quiet", "--config", strictCfg, "--drops", drops, capPath); code != exitOK {
		t.Fatalf("replay: %d %s", code, errOut)
	}
	var out []byte
	for _, field := range []string{"frame.comment", "pkt_comment"} {
		out, err = exec.Command(tshark, "-r", drops, "-T", "fields", "-e", field).Output()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 36 {
		t.Fatalf("tshark shows %d commented packets, want 36:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "handshake_not_completed: ") || !strings.Contains(l, "3-way handshake not completed (from DMZ") {
			t.Fatalf("comment %q", l)
		}
	}
}

func TestParseIfIndex(t *testing.T) {
	m, err := parseIfIndex("3=LAN, 4=eth2")
	if err != nil || m[3] != "LAN" || m[4] != "eth2" || len(m) != 2 {
		t.Errorf("parseIfIndex: %v, %v", m, err)
	}
	for _, bad := range []string{"3", "x=LAN", "0=LAN", "3=", "-1=LAN"} {
		if _, err := parseIfIndex(bad); err == nil {
			t.Errorf("parseIfIndex(%q) accepted", bad)
		}
	}
}
