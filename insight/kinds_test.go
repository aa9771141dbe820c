package insight

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/synth"
)

var t0 = time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)

// find returns the insights of kind k.
func find(ins []Insight, k Kind) []Insight {
	var out []Insight
	for _, in := range ins {
		if in.Kind == k {
			out = append(out, in)
		}
	}
	return out
}

func fixTitles(in Insight) []string {
	var out []string
	for _, f := range in.Fix {
		out = append(out, f.Scope+": "+f.Title)
	}
	return out
}

// A table far too small for the traffic: adaptive timeouts, evictions of the
// half-open connections a full table holds, refusals.
func TestTableFull(t *testing.T) {
	tr := synth.NewTraffic(3000, 6000, 5)
	path := writeCapture(t, "busy.pcap", func(b *bytes.Buffer) error {
		_, err := synth.WriteTrafficEvery(b, tr, t0, 100*time.Microsecond)
		return err
	})
	cfg := config.Default()
	if err := cfg.SetSetting("MaxConnections", "1000"); err != nil {
		t.Fatal(err)
	}
	ins, _, sum, eng := replayAll(t, cfg, path)
	ps := find(ins, TablePressure)
	if len(ps) != 1 {
		t.Fatalf("table_pressure: %d insights, all %+v", len(ps), ins)
	}
	in := ps[0]
	st := eng.Table().Stats()
	wantFigure(t, in, "limit", 1000)
	wantFigure(t, in, "adaptive_start", 600)
	wantFigure(t, in, "evicted", float64(st.Evicted))
	wantFigure(t, in, "refused", float64(st.TableFull))
	if st.Evicted == 0 || in.Figures["peak"] < 1000 {
		t.Errorf("evicted %d, peak %v", st.Evicted, in.Figures["peak"])
	}
	if in.Figures["half_open_evict"] != float64(st.Evicted) {
		t.Errorf("half-open evictions %v of %d: the SYNs come first, so every eviction is of a half-open connection", in.Figures["half_open_evict"], st.Evicted)
	}
	if !strings.HasPrefix(in.Summary, "The connection table holds ") || !strings.Contains(in.Summary, "of its 1000 connections") ||
		!strings.Contains(in.Summary, "Most evicted connections were half-open (100 % in SYN_SENT or SYN_RECV)") {
		t.Errorf("summary: %s", in.Summary)
	}
	sev := Warning
	if st.TableFull > 0 {
		sev = Critical
	}
	if in.Severity != sev {
		t.Errorf("severity %v, want %v", in.Severity, sev)
	}
	if f := in.Fix[0]; f.Title != "MaxConnections=2048" || !strings.Contains(f.Diff, `+    <variable name="MaxConnections">2048</variable>`) ||
		!strings.HasPrefix(f.Cost, "up to 1048 more connections held when full, 122.8 KiB at 120 bytes each") {
		t.Errorf("first fix: %+v", f)
	}
	if got := fixTitles(in); len(got) < 2 || got[1] != "global: TcpSynSentTimeout=30" {
		t.Errorf("fixes %v", got)
	}
	if len(in.Evidence.Samples) == 0 || in.Evidence.Samples[0].Reason != "evicted" {
		t.Errorf("samples %+v", in.Evidence.Samples)
	}
	// Thousands of servers, one half-open connection each: no SYN flood.
	if fl := find(ins, SYNFlood); len(fl) != 0 {
		t.Errorf("syn_flood: %+v", fl)
	}
	_ = sum
}

func TestConnectionLimit(t *testing.T) {
	path := writeCapture(t, "burst.pcapng", func(b *bytes.Buffer) error {
		return synth.WriteHostBurst(b, synth.HostBurst{Client: netip.MustParseAddr("10.1.0.7"), Server: netip.MustParseAddrPort("192.0.2.80:8080"),
			Conns: 700, Every: 10 * time.Millisecond, Start: t0, Tail: 2 * time.Second})
	})
	ins, _, sum, _ := replayAll(t, config.Default(), path)
	in := only(t, ins, ConnectionLimitHit)
	refused := sum.DropsByReason["connection_limit"]
	if refused != 100 {
		t.Fatalf("%d refused, want 100 (700 against a limit of 600)", refused)
	}
	wantFigure(t, in, "refused", 100)
	wantFigure(t, in, "limit", 600)
	wantFigure(t, in, "limit_at_once", 1)
	wantFigure(t, in, "top_dest_count", 100)
	// The last minute: 100 refusals in one second, counted over the minute.
	if r := in.Figures["refused_per_s"]; r < 1.6 || r > 1.7 {
		t.Errorf("rate %v", r)
	}
	if !strings.HasPrefix(in.Summary, "10.1.0.7 keeps hitting its limit of 600 connections open at once (ConnLimitPerSource): 100 new connections refused since 03:00:06") ||
		!strings.Contains(in.Summary, "most to 192.0.2.80:8080 (rule 'Permit all connections')") {
		t.Errorf("summary: %s", in.Summary)
	}
	if got := fixTitles(in); len(got) != 2 || got[0] != "global: ConnLimitPerSource=1200" || got[1] != "operation: look at what 10.1.0.7 holds" ||
		in.Fix[1].Command != "keepstate conntrack list src 10.1.0.7" {
		t.Errorf("fixes %v", got)
	}

	// A rule's own limit: the narrow fix raises it on that rule.
	cfg := config.Default()
	cfg.Policy.Rules[0].MaxConnectionsPerSource = 50
	ins, _, sum, _ = replayAll(t, cfg, path)
	// The rule refuses all but 50; of the attempts it lets the global limits see,
	// the rate of 600 a minute refuses the last 100: two limits, two insights.
	lim := find(ins, ConnectionLimitHit)
	if len(lim) != 2 || sum.DropsByReason["connection_limit"] != 650 {
		t.Fatalf("%d insights, %d refused: %+v", len(lim), sum.DropsByReason["connection_limit"], lim)
	}
	in = lim[0]
	if in.Figures["limit_of_rule"] != 1 {
		in = lim[1]
	}
	wantFigure(t, in, "refused", 550)
	wantFigure(t, in, "limit", 50)
	wantFigure(t, in, "limit_of_rule", 1)
	if got := fixTitles(in); len(got) != 2 || got[0] != "rule: MaxConnectionsPerSource=100 on rule 'Permit all connections' only" ||
		!strings.Contains(in.Fix[0].Diff, `+      <variable name="MaxConnectionsPerSource">100</variable>`) {
		t.Errorf("fixes %v", got)
	}
}

func TestSYNFlood(t *testing.T) {
	var syns int
	path := writeCapture(t, "flood.pcapng", func(b *bytes.Buffer) (err error) {
		syns, err = synth.WriteSYNFlood(b, synth.SYNFlood{Target: netip.MustParseAddrPort("192.0.2.80:80"), Sources: 5000,
			PerSecond: 200, Duration: 20 * time.Second, Tail: 75 * time.Second, Start: t0})
		return err
	})
	ins, _, _, _ := replayAll(t, config.Default(), path)
	in := only(t, ins, SYNFlood)
	wantFigure(t, in, "syn_recv", float64(syns))
	wantFigure(t, in, "half_open", float64(syns))
	wantFigure(t, in, "syn_sent", 0)
	wantFigure(t, in, "server_port", 80)
	if n := in.Figures["sources"]; n < 2500 || n > float64(syns) {
		t.Errorf("sources %v", n)
	}
	// Seen when the first half-open connections time out: TcpSynRecvTimeout (60 s)
	// after the flood began.
	if in.First.Before(t0.Add(60*time.Second)) || in.First.After(t0.Add(62*time.Second)) {
		t.Errorf("first seen %v, want about %v", in.First, t0.Add(60*time.Second))
	}
	if !strings.HasPrefix(in.Summary, "192.0.2.80:80 is flooded with connections that never complete: 4000 half-open from") ||
		!strings.Contains(in.Summary, "a SYN flood from spoofed sources") {
		t.Errorf("summary: %s", in.Summary)
	}
	if got := fixTitles(in); len(got) != 2 || got[0] != "global: TcpSynRecvTimeout=10" || got[1] != "operation: SYN cookies on the server" ||
		!strings.Contains(in.Fix[0].Diff, `+    <variable name="TcpSynRecvTimeout">10</variable>`) {
		t.Errorf("fixes %v", got)
	}
	if in.Severity != Critical {
		t.Errorf("severity %v", in.Severity)
	}
}

func TestPathChange(t *testing.T) {
	path := writeCapture(t, "pathchange.pcapng", func(b *bytes.Buffer) error {
		return synth.WritePathChange(b, synth.PathChange{Conns: 40, Start: t0, At: 2 * time.Second, Duration: 4 * time.Second, Shift: 1 << 30})
	})
	ins, _, sum, _ := replayAll(t, config.Default(), path)
	in := only(t, ins, WindowDesync)
	wantFigure(t, in, "connections", 40)
	wantFigure(t, in, "dropped_packets", float64(sum.DropsByReason["out_of_window"]))
	wantFigure(t, in, "servers", 3)
	if b := in.Figures["burst_s"]; b <= 0 || b > 0.1 {
		t.Errorf("burst %v s: the first packets after the change come within 4 ms", b)
	}
	if !strings.HasPrefix(in.Summary, "40 established connections on Internet had ") {
		t.Errorf("summary: %s", in.Summary)
	}
	if got := fixTitles(in); len(got) != 2 || got[0] != "operation: forget the stuck connections" || in.Fix[0].Command != "keepstate conntrack flush src 10.1.0.0/24" ||
		got[1] != "rule: Handshake=loose on rule 'Permit all connections' only" {
		t.Errorf("fixes %v %q", got, in.Fix[0].Command)
	}
}

// SYN-ACKs from servers on the Internet to our public addresses that never sent
// a SYN are the answers to SYNs spoofed elsewhere, not a path around the
// firewall.
func TestBackscatterIsNotAnAsymmetricPath(t *testing.T) {
	path := writeCapture(t, "backscatter.pcapng", func(b *bytes.Buffer) error {
		return synth.WriteBackscatter(b, netip.MustParsePrefix("198.51.100.0/24"), 400, t0)
	})
	ins, _, sum, _ := replayAll(t, config.Default(), path)
	if sum.DropsByReason["handshake_not_completed"] != 400 {
		t.Fatalf("drops %v", sum.DropsByReason)
	}
	for _, in := range ins {
		t.Errorf("unexpected %s: %s", in.Kind, in.Summary)
	}
}

func TestRuleShadowedAtLoad(t *testing.T) {
	cfg := config.Default()
	r := cfg.Policy.Rules[0]
	r.ID, r.Name, r.Action = 2, "No SSH from outside", 0 // Deny, after the permit-all rule
	r.Services = []string{"SSH"}
	cfg.Policy.Rules = append(cfg.Policy.Rules, r)
	m := New(Options{})
	m.SetMemory(func() (float64, string) { return testBytesPerConn, "test" })
	rs, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	m.SetConfig(cfg, rs, t0.UnixNano())
	in := only(t, m.Insights(), RuleShadowed)
	if in.Severity != Warning || !in.Open ||
		in.Summary != "Rule 'No SSH from outside' (Deny, 2 of 2) can never match: rule 'Permit all connections' (Permit) before it decides every connection it describes. What it says is not what happens: those connections get another action than this rule's." {
		t.Errorf("insight: %v %s", in.Severity, in.Summary)
	}
	if got := fixTitles(in); len(got) != 2 || got[0] != "rule: move rule 'No SSH from outside' above rule 'Permit all connections'" || got[1] != "rule: disable rule 'No SSH from outside'" {
		t.Fatalf("fixes %v", got)
	}
	// The move, applied, puts the Deny first; then nothing is shadowed and the
	// insight closes at that load.
	moved, _, err := m.FixedConfig(in.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Policy.Rules[0].Name != "No SSH from outside" || moved.Policy.Rules[1].Name != "Permit all connections" {
		t.Fatalf("moved rules: %+v", moved.Policy.Rules)
	}
	rs2, _ := moved.Compile()
	m.SetConfig(moved, rs2, t0.Add(time.Minute).UnixNano())
	ins := m.Insights()
	if len(ins) != 1 || ins[0].Open || !ins[0].Closed.Equal(t0.Add(time.Minute)) {
		t.Errorf("after the move: %+v", ins)
	}
}
