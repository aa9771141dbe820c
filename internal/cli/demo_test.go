package cli

import (
	"strings"
	"testing"
)

// The demo's claims are the engine's verdicts on the generated captures.
func TestDemoTellsBothStories(t *testing.T) {
	code, out, errOut := run("demo")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`With <variable name="Require3WayHandshake">1</variable> in winroute.cfg:`,
		"18 of 30 logins worked, 12 failed",
		"Every failed login is one the switch leaked (12 of 12; 0 others)",
		"[23/Sep/2012 11:50:42] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:92, 10.2.0.2:8080 -> 10.1.0.2:27779, flags:[ ACK PSH ]",
		`With <variable name="Require3WayHandshake">0</variable> in winroute.cfg:`,
		"30 of 30 logins worked, 0 failed; keepstate dropped 0 of 198 packets.",
		"keepstate picked up 12 connections from Tomcat's replies",
		`With <variable name="TcpEstablishedTimeout">3600</variable>:`,
		"6 of 6 keep-alive probes were dropped",
		"idle 7200.001 s > TcpEstablishedTimeout 3600 s",
		`With <variable name="TcpEstablishedTimeout">9000</variable>:`,
		"all 6 keep-alive probes and the reuse passed: 0 packets dropped",
		// The detectors' conclusions and fixes, once per story, for the broken run.
		"keepstate's insight (asymmetric_path, critical):",
		"10.2.0.2:8080 answers 10.1.0.0/24 on 12 connections whose requests never crossed the",
		"its narrowest fix, Handshake=loose on rule 'Web servers to Tomcat' only (rule)",
		`+      <variable name="Handshake">loose</variable>`,
		"keepstate's insight (keepalive_outlives_timeout, warning):",
		"its narrowest fix, IdleTimeout=8100 on rule 'Application to database' only (rule)",
		`+      <variable name="IdleTimeout">8100</variable>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Only the broken runs raise something.
	if n := strings.Count(out, "keepstate's insight ("); n != 2 {
		t.Errorf("%d insights in the demo, want 2", n)
	}
	if t.Failed() {
		t.Log(out)
	}
}
