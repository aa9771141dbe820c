//go:build linux

package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// runScenario runs the named scenario with its files kept in a test folder and
// fails the test with the whole story when it does not pass.
func runScenario(t *testing.T, name string) *Result {
	t.Helper()
	res := runScenarioResult(t, name)
	if !res.Passed() {
		t.Fatalf("scenario %s failed: %v\ndaemon output:\n%s", name, res.Err, res.DaemonOutput)
	}
	return res
}

// runScenarioResult runs the named scenario and returns its result, passed or not.
func runScenarioResult(t *testing.T, name string) *Result {
	t.Helper()
	needLab(t)
	sc, ok := Find(name)
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	var out strings.Builder
	res := Run(ctxTimeout(t, 2*time.Minute), Env{Binary: binary, FaultBinary: faultBinary, Dir: t.TempDir(), Out: &out}, sc)
	t.Log("\n" + out.String())
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
	res := runScenarioResult(t, "handshake")
	if res.Err != nil {
		t.Fatalf("scenario did not run to its end: %v\n%s", res.Err, res.DaemonOutput)
	}
	for _, id := range []string{"enforced.connect", "enforced.log", "enforced.drops"} {
		if c, ok := res.Check(id); !ok || !c.OK {
			t.Errorf("%s: want %s, saw %s", id, c.Want, c.Got)
		}
	}
	c, _ := res.Check("enforced.connect")
	if !strings.Contains(c.Got, ": timeout after") {
		t.Errorf("enforced connect: %q, want a timeout", c.Got)
	}
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "{pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:60, 10.201.2.2:8080 -> 10.201.1.2:") ||
		!strings.Contains(debug, "flags:[ SYN ACK ]") {
		t.Errorf("debug.log lacks the Kerio line for the dropped SYN-ACK:\n%s", debug)
	}
	// Relaxed, the connection is picked up from Tomcat's SYN-ACK as the reply of a
	// connection the client opened, and the rules are checked in that direction.
	for _, id := range []string{"relaxed.exchange", "relaxed.log"} {
		if c, ok := res.Check(id); !ok || !c.OK {
			t.Errorf("%s: want %s, saw %s", id, c.Want, c.Got)
		}
	}
	if !res.Passed() {
		t.Fatalf("scenario checks: %+v", res.Checks)
	}
}

func TestScenarioKeepalive(t *testing.T) {
	res := runScenario(t, "keepalive")
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "packet dropped: connection state expired (state ESTABLISHED, idle ") || !strings.Contains(debug, "> TcpEstablishedTimeout 2 s) (from LAN, proto:TCP") {
		t.Errorf("debug.log lacks the expired keep-alive probe:\n%s", debug)
	}
}

// Story 1 fixed on one rule, live: the loose rule's connection works over the
// leaked path, the other rule's is still refused.
func TestScenarioHandshakeRule(t *testing.T) {
	runScenario(t, "handshake-rule")
}

// Story 2 fixed on one rule, live: the rule's IdleTimeout keeps its connection,
// the other rule's dies at the global timeout, and the log says which timeout.
func TestScenarioRuleTimeout(t *testing.T) {
	res := runScenario(t, "rule-timeout")
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "> TcpEstablishedTimeout 2 s) (from LAN, proto:TCP") || strings.Contains(debug, "IdleTimeout of rule") {
		t.Errorf("debug.log:\n%s", debug)
	}
}

func TestScenarioReload(t *testing.T) {
	res := runScenario(t, "reload")
	c, _ := res.Check("transfer")
	if !strings.HasSuffix(c.Got, ": ok") {
		t.Errorf("transfer: %q", c.Got)
	}
}

// TestStops is the end-to-end test of every kind of stop and start: SIGTERM
// (both fail modes), SIGUSR2, systemctl restart, SIGKILL (both fail modes) and a
// panic, each with a live connection sending a line every 250 ms through
// network namespaces, whose every line must come back intact and in order.
func TestStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks []string
	}{
		{"sigterm", []string{"stopped", "down.open", "sneak.refused"}},
		{"sigterm-closed", []string{"stopped", "down.closed"}},
		{"restart", []string{"stopped", "down.closed"}},
		{"systemctl", []string{"restarted"}},
		{"sigkill", []string{"crashed", "down.closed", "restarted", "young.lines", "young.log"}},
		{"sigkill-open", []string{"crashed", "down.open", "restarted"}},
		{"panic", []string{"crashed", "down.closed", "restarted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runScenario(t, tc.name)
			for _, id := range append(tc.checks, "restored", "unclean", "conn", "lines", "no.drops") {
				if c, ok := res.Check(id); !ok || !c.OK {
					t.Errorf("check %s: want %s, saw %s", id, c.Want, c.Got)
				}
			}
			c, _ := res.Check("restored")
			if !strings.Contains(c.Got, " 1 connection(s) restored") && !strings.Contains(c.Got, " 2 connection(s) restored") {
				t.Errorf("restored: %q, want the client's connection", c.Got)
			}
		})
	}
}

func TestScenarioDeny(t *testing.T) {
	res := runScenario(t, "deny")
	debug := readLog(t, res, "debug.log")
	if !strings.Contains(debug, "packet dropped: Traffic rule: Refused service (from LAN, proto:TCP") {
		t.Errorf("debug.log lacks the denied SYN:\n%s", debug)
	}
}

func TestScenarioLimit(t *testing.T) {
	res := runScenario(t, "limit")
	c, _ := res.Check("limit.outcomes")
	if !strings.HasPrefix(c.Got, "20 ok, 10 timeout, 0 other") {
		t.Errorf("outcomes: %q", c.Got)
	}
	warning := readLog(t, res, "warning.log")
	if !strings.Contains(warning, "Connection limit for source address '10.201.1.2' reached (limit: 20)") {
		t.Errorf("warning.log:\n%s", warning)
	}
}

// Ctrl-C in the middle of a scenario: Run returns at once, says it was
// interrupted, and leaves no namespace and no daemon behind.
func TestRunInterruptedTearsDown(t *testing.T) {
	needLab(t)
	const prefix = "kslabint"
	sc, _ := Find("keepalive") // idles for seconds: certainly running at the interrupt
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	dir := t.TempDir()
	res := Run(ctx, Env{Binary: binary, Dir: dir, Prefix: prefix}, sc)
	if res.Err == nil || !strings.HasPrefix(res.Err.Error(), "interrupted") {
		t.Errorf("Err = %v, want interrupted", res.Err)
	}
	if res.Duration > 10*time.Second {
		t.Errorf("took %v after the interrupt at 4 s", res.Duration)
	}
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	// The daemon wrote its snapshot on the way out: it was stopped, not killed.
	if !strings.Contains(res.DaemonOutput, "saved 0 connection(s) to "+dir+"/keepalive/conntrack.snap") &&
		!strings.Contains(res.DaemonOutput, "saved 1 connection(s) to "+dir+"/keepalive/conntrack.snap") {
		t.Errorf("daemon did not stop cleanly:\n%s", res.DaemonOutput)
	}
}
