//go:build linux

package lab

import (
	"os"
	"strings"
	"testing"
	"time"
)

// runScenario runs the named scenario with its files kept in a test folder and
// fails the test with the whole story when it does not pass.
func runScenario(t *testing.T, name string) *Result {
	t.Helper()
	needLab(t)
	sc, ok := Find(name)
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	var out strings.Builder
	res := Run(ctxTimeout(t, 2*time.Minute), Env{Binary: binary, Dir: t.TempDir(), Out: &out}, sc)
	t.Log("\n" + out.String())
	if !res.Passed() {
		t.Fatalf("scenario %s failed: %v\ndaemon output:\n%s", name, res.Err, res.DaemonOutput)
	}
	return res
}

// readLog returns log file name of a finished scenario.
func readLog(t *testing.T, res *Result, name string) string {
	t.Helper()
	data, err := os.ReadFile(res.Dir + "/logs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestScenarioHandshake(t *testing.T) {
	res := runScenario(t, "handshake")
	c, _ := res.Check("enforced.connect")
	if !strings.Contains(c.Got, ": timeout after") {
		t.Errorf("enforced connect: %q, want a timeout", c.Got)
	}
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "{pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP") {
		t.Errorf("debug.log lacks the Kerio line for the dropped SYN-ACK:\n%s", debug)
	}
}

func TestScenarioKeepalive(t *testing.T) {
	res := runScenario(t, "keepalive")
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "packet dropped: connection state expired (state ESTABLISHED, idle ") || !strings.Contains(debug, "> TcpEstablishedTimeout 2 s) (from LAN, proto:TCP") {
		t.Errorf("debug.log lacks the expired keep-alive probe:\n%s", debug)
	}
}
