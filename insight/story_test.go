package insight

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/dataplane/replay"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
	"keepstate/synth"
)

// testBytesPerConn is the memory figure the tests quote costs with, so that they
// need not measure it.
const testBytesPerConn = 120.0

// replayInsights replays capture under cfg with the detectors watching, as
// `keepstate replay` does, and returns what they found.
func replayInsights(t *testing.T, cfg *config.Config, capture string) []Insight {
	t.Helper()
	ins, _, _ := replayMonitor(t, cfg, capture)
	return ins
}

// replayMonitor is replayInsights that also returns the monitor and the summary.
func replayMonitor(t *testing.T, cfg *config.Config, capture string) ([]Insight, *Monitor, *replay.Summary) {
	t.Helper()
	ins, m, sum, _ := replayAll(t, cfg, capture)
	return ins, m, sum
}

// replayAll is replayMonitor that also returns the engine.
func replayAll(t *testing.T, cfg *config.Config, capture string) ([]Insight, *Monitor, *replay.Summary, *firewall.Engine) {
	t.Helper()
	m := New(Options{ExplainConfig: "test.cfg"})
	m.SetMemory(func() (float64, string) { return testBytesPerConn, "test figure" })
	eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: m.ConnEnd})
	if err != nil {
		t.Fatal(err)
	}
	o := replay.Options{Engine: eng}
	WatchReplay(&o, m, cfg)
	sum, err := replay.Run([]string{capture}, o)
	if err != nil || sum.Failed() {
		t.Fatalf("replay: %v %+v", err, sum.Files)
	}
	return m.Insights(), m, sum, eng
}

func writeCapture(t *testing.T, name string, write func(*bytes.Buffer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func parseConfig(t *testing.T, text []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.cfg", text)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// only returns the one insight of kind k, failing unless there is exactly one
// insight and it is of that kind.
func only(t *testing.T, ins []Insight, k Kind) Insight {
	t.Helper()
	if len(ins) != 1 || ins[0].Kind != k {
		var kinds []string
		for _, in := range ins {
			kinds = append(kinds, string(in.Kind)+": "+in.Summary)
		}
		t.Fatalf("want one %s insight, got %d:\n%s", k, len(ins), strings.Join(kinds, "\n"))
	}
	return ins[0]
}

func wantFigure(t *testing.T, in Insight, name string, want float64) {
	t.Helper()
	if got, ok := in.Figures[name]; !ok || got != want {
		t.Errorf("%s: figure %s = %v (present %v), want %v", in.Kind, name, got, ok, want)
	}
}

func TestStory1LeakedPath(t *testing.T) {
	var story *synth.Story1
	path := writeCapture(t, "story1.pcapng", func(b *bytes.Buffer) (err error) {
		story, err = synth.WriteStory1(b)
		return err
	})
	strict, _ := synth.Story1Config(true)
	ins, mon, _ := replayMonitor(t, parseConfig(t, strict), path)
	in := only(t, ins, AsymmetricPath)

	leaked := story.Leaked()
	wantFigure(t, in, "connections", float64(leaked))
	wantFigure(t, in, "syn_acks", float64(leaked))
	wantFigure(t, in, "dropped_packets", float64(3*leaked)) // SYN-ACK, the token, FIN
	wantFigure(t, in, "clients", 2)
	wantFigure(t, in, "both_sides", 0)
	wantFigure(t, in, "server_port", 8080)
	if in.Severity != Critical || !in.Open || in.Count != uint64(3*leaked) {
		t.Errorf("severity %v open %v count %d", in.Severity, in.Open, in.Count)
	}
	want := "10.2.0.2:8080 answers 10.1.0.0/24 on 12 connections whose requests never crossed the firewall: " +
		"a path bypasses it (a switch or route leaks the requests). Fix the path."
	if !strings.HasPrefix(in.Summary, want) {
		t.Errorf("summary:\n%s\nwant it to start with:\n%s", in.Summary, want)
	}
	if len(in.Evidence.Samples) != firstSamples+lastSamples {
		t.Fatalf("%d samples", len(in.Evidence.Samples))
	}
	s := in.Evidence.Samples[0]
	if s.Reason != "handshake_not_completed" || !strings.HasPrefix(s.Packet, "tcp 10.2.0.2:8080 > 10.1.0.") ||
		!strings.Contains(s.Packet, "flags S.") || !strings.HasSuffix(s.Packet, "iface DMZ") ||
		!strings.Contains(s.Explain, "keepstate explain --config test.cfg --capture "+path+" --packet ") {
		t.Errorf("first sample: %+v", s)
	}
	// The last leaked login is the seed's 10.1.0.2:27779.
	if last := in.Evidence.Samples[len(in.Evidence.Samples)-1]; !strings.Contains(last.Packet, "> 10.1.0.2:27779") {
		t.Errorf("last sample: %+v", last)
	}
	if in.First.IsZero() || !in.Last.Equal(time.Date(2012, 9, 23, 11, 50, 42, 50_300_000, time.UTC)) {
		t.Errorf("first %v last %v", in.First, in.Last)
	}
	if len(in.Fix) != 2 {
		t.Fatalf("fixes: %+v", in.Fix)
	}
	// Narrowest first: the rule that permits the logins, then every rule.
	rule, global := in.Fix[0], in.Fix[1]
	if rule.Scope != scopeRule || rule.Title != "Handshake=loose on rule 'Web servers to Tomcat' only" || !rule.Applicable ||
		!strings.Contains(rule.Diff, `@@ <variable name="Name">Web servers to Tomcat</variable>`) ||
		!strings.Contains(rule.Diff, "\n+      <variable name=\"Handshake\">loose</variable>\n") || strings.Count(rule.Diff, "\n+ ") != 1 {
		t.Errorf("rule fix: %+v", rule)
	}
	if !strings.HasSuffix(in.Summary, "Meanwhile: Handshake=loose on rule 'Web servers to Tomcat' only.") {
		t.Errorf("summary: %s", in.Summary)
	}
	if global.Scope != scopeGlobal || global.Title != "Require3WayHandshake=0" || !global.Applicable ||
		!strings.Contains(global.Diff, "\n-    <variable name=\"Require3WayHandshake\">1</variable>\n+    <variable name=\"Require3WayHandshake\">0</variable>\n") {
		t.Errorf("global fix: %+v", global)
	}

	// The rule's fix in force: every login works, nothing is raised, and another
	// rule's mid-stream packets are still refused.
	fixed, f, err := mon.FixedConfig(in.ID, 0)
	if err != nil || f.Title != rule.Title {
		t.Fatalf("FixedConfig: %v %+v", err, f)
	}
	ins, _, sum := replayMonitor(t, fixed, path)
	if len(ins) != 0 || sum.Dropped != 0 {
		t.Errorf("with the rule's fix: %d dropped, insights %+v", sum.Dropped, ins)
	}
	if !fixed.Settings.Require3WayHandshake {
		t.Error("the rule's fix changed Require3WayHandshake")
	}
	eng, err := fixed.NewEngine(firewall.Options{})
	if err != nil {
		t.Fatal(err)
	}
	web := packet.AppendTCP(nil, packet.TCPSpec{Src: netip.MustParseAddrPort("10.1.0.2:80"), Dst: netip.MustParseAddrPort("203.0.113.9:51000"),
		Seq: 7, Ack: 9, Flags: packet.ACK | packet.PSH, Window: 500, Payload: []byte("HTTP/1.1 200 OK")})
	var p packet.Parsed
	if d := eng.Decide(web, packet.LinkRaw, -1, time.Now().UnixNano(), &p); d.Reason != reason.HandshakeNotCompleted {
		t.Errorf("a web server's mid-stream reply to the Internet under the fix: %v %v, want handshake_not_completed", d.Action, d.Reason)
	}

	// The band-aid in force: nothing is dropped, nothing is raised.
	loose, _ := synth.Story1Config(false)
	if ins := replayInsights(t, parseConfig(t, loose), path); len(ins) != 0 {
		t.Errorf("with Require3WayHandshake=0: %d insights: %+v", len(ins), ins)
	}
}

func TestStory2KeepAlives(t *testing.T) {
	var story *synth.Story2
	path := writeCapture(t, "story2.pcapng", func(b *bytes.Buffer) (err error) {
		story, err = synth.WriteStory2(b)
		return err
	})
	short, _ := synth.Story2Config(3600)
	ins, mon, _ := replayMonitor(t, parseConfig(t, short), path)
	in := only(t, ins, KeepAliveOutlivesTimeout)
	wantFigure(t, in, "connections", float64(story.Conns))
	// The probes come 2 h after each connection's last ACK, give or take the
	// milliseconds the capture puts between them.
	if iv := in.Figures["keepalive_interval_s"]; iv < 7200 || iv > 7201 {
		t.Errorf("keep-alive interval %v s, want 7200", iv)
	}
	wantFigure(t, in, "timeout_s", 3600)
	wantFigure(t, in, "needed_timeout_s", 7201)
	wantFigure(t, in, "advised_timeout_s", 8100) // 7201 s + 10 %, rounded up to 5 min
	wantFigure(t, in, "rfc5382_min_s", 7440)
	wantFigure(t, in, "bytes_per_connection", testBytesPerConn)
	// Two rounds of probes and answers, then the reuse: the query, its answer and
	// the ACK of that (a bare ACK, so it looks like a keep-alive answer too).
	wantFigure(t, in, "dropped_packets", float64(4*story.Conns+3))
	wantFigure(t, in, "keepalive_packets", float64(4*story.Conns+1))
	// Nothing else expires in the capture: the cost is the connections kept.
	wantFigure(t, in, "extra_connections_global", float64(story.Conns))
	if in.Severity != Warning {
		t.Errorf("severity %v", in.Severity)
	}
	for _, w := range []string{"Connections to 10.0.2.20:1521 (rule 'Application to database')", "keep-alives come every 2 h",
		"8100 s (2 h 15 min)", "RFC 5382's minimum of 7440 s", "Fix: IdleTimeout=8100 on rule 'Application to database' only (+3 connections, 360 bytes), or TcpEstablishedTimeout=8100 for every connection (at most +3 connections, 360 bytes)."} {
		if !strings.Contains(in.Summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, in.Summary)
		}
	}
	if len(in.Fix) != 2 {
		t.Fatalf("fixes: %+v", in.Fix)
	}
	if f := in.Fix[0]; f.Scope != scopeRule || f.Title != "IdleTimeout=8100 on rule 'Application to database' only" || !f.Applicable ||
		!strings.Contains(f.Diff, `@@ <variable name="Name">Application to database</variable>`) ||
		!strings.Contains(f.Diff, "\n+      <variable name=\"IdleTimeout\">8100</variable>\n") ||
		!strings.HasPrefix(f.Cost, "+3 connections, 360 bytes: ") {
		t.Errorf("rule fix: %+v", f)
	}
	if f := in.Fix[1]; f.Scope != scopeGlobal || f.Title != "TcpEstablishedTimeout=8100" || !f.Applicable ||
		!strings.Contains(f.Diff, "-    <variable name=\"TcpEstablishedTimeout\">3600</variable>\n+    <variable name=\"TcpEstablishedTimeout\">8100</variable>") {
		t.Errorf("global fix: %+v", f)
	}
	// The rule's fix in force: the probes keep the connections, nothing is dropped.
	fixed, _, err := mon.FixedConfig(in.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ins, _, sum := replayMonitor(t, fixed, path); len(ins) != 0 || sum.Dropped != 0 {
		t.Errorf("with IdleTimeout=8100 on the rule: %d dropped, %+v", sum.Dropped, ins)
	}

	long, _ := synth.Story2Config(9000)
	if ins := replayInsights(t, parseConfig(t, long), path); len(ins) != 0 {
		t.Errorf("with a 9000 s timeout: %+v", ins)
	}
}

// Busy traffic on a link that loses and duplicates some packets raises nothing:
// gaps and retransmissions are what networks do.
func TestLossyTrafficRaisesNothing(t *testing.T) {
	tr := synth.NewTraffic(2000, 40000, 7)
	path := writeCapture(t, "lossy.pcap", func(b *bytes.Buffer) error {
		_, err := synth.WriteTrafficLoss(b, tr, time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC), 50*time.Microsecond, 0.02)
		return err
	})
	ins := replayInsights(t, config.Default(), path)
	for _, in := range ins {
		t.Errorf("unexpected %s: %s", in.Kind, in.Summary)
	}
}

func firewallOptions(m *Monitor) firewall.Options { return firewall.Options{OnConnEnd: m.ConnEnd} }
