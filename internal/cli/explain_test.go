package cli

import (
	"os"
	"strings"
	"testing"

	"keepstate/synth"
)

func TestExplainCommand(t *testing.T) {
	dir := t.TempDir()
	story1, _ := synth.Story1Config(true)
	cfgPath := diagConfig(t, dir, "winroute.cfg", story1)

	code, out, errOut := diagRun("explain", "--config", cfgPath, "tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"packet: tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S iface LAN\n",
		" 4. rule 1 \"Internet to web servers\"  no match  source: ifgroup:Internet does not match 10.1.0.2 (ingress interface LAN)\n",
		"verdict: accept, by rule 2 \"Web servers to Tomcat\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The packet may come as several words, flags after it.
	code, out, _ = diagRun("explain", "tcp", "10.2.0.2:8080", ">", "10.1.0.2:27779", "flags", "PA", "--config", cfgPath, "--json")
	if code != exitOK || !strings.Contains(out, `"reason": "handshake_not_completed"`) {
		t.Errorf("exit %d:\n%s", code, out)
	}

	capPath := diagFile(t, dir, "story1.pcapng", func(f *os.File) error { _, err := synth.WriteStory1(f); return err })
	code, out, _ = diagRun("explain", "--config", cfgPath, "--capture", capPath, "--packet", "10")
	if code != exitOK || !strings.Contains(out, "packet 10 of "+capPath) ||
		!strings.Contains(out, "verdict: drop: handshake_not_completed (3-way handshake not completed)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestExplainCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"explain"}, exitUsage, "usage: keepstate explain"},
		{[]string{"explain", "--capture", "x.pcap"}, exitUsage, "usage: keepstate explain"},
		{[]string{"explain", "--capture", "x.pcap", "--packet", "1", "tcp 1.1.1.1:1 > 2.2.2.2:2"}, exitUsage, "usage: keepstate explain"},
		{[]string{"explain", "tcp 1.1.1.1 > 2.2.2.2:2"}, exitUsage, `explain: source: "1.1.1.1": want ADDRESS:PORT`},
		{[]string{"explain", "tcp 1.1.1.1:1 > 2.2.2.2:2 iface LAN"}, exitUsage, `no interface "LAN" in the configuration (it has Internet)`},
		{[]string{"explain", "--capture", "/nonexistent.pcap", "--packet", "1"}, exitFail, "no such file"},
	} {
		code, _, errOut := diagRun(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
}
