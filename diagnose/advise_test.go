package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/synth"
)

func story2Config(t *testing.T, seconds int) *Policy {
	t.Helper()
	data, _ := synth.Story2Config(seconds)
	cfg, err := config.Parse("story2.cfg", data)
	if err != nil {
		t.Fatal(err)
	}
	return policyOf(t, cfg)
}

// policyOf is what the command line builds from a configuration file.
func policyOf(t testing.TB, cfg *config.Config) *Policy {
	t.Helper()
	rs, err := cfg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return &Policy{Rules: rs, Settings: cfg.EngineSettings()}
}

func writeStory2(t *testing.T) (string, *synth.Story2) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "story2.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := synth.WriteStory2(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, s
}

func writeKeepAlives(t *testing.T, spec synth.KeepAliveSpec) (string, *synth.KeepAliveCapture) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ka.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := synth.WriteKeepAlives(f, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, c
}

// TestAdviseStory2 re-enacts the second story: keep-alives every 7200 s against
// an established-connection timeout of 3600 s (cut) and 9000 s (kept).
func TestAdviseStory2(t *testing.T) {
	path, story := writeStory2(t)
	for _, tc := range []struct {
		timeout int
		cut     int
	}{{3600, 3}, {9000, 0}} {
		r, err := Advise(path, AdviseOptions{Policy: story2Config(t, tc.timeout), BytesPerConn: 128, BytesSource: "given"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Connections != 3 || r.TCPConnections != 3 || r.WithKeepAlives != 3 {
			t.Fatalf("%d s: connections %d tcp %d keep-alives %d", tc.timeout, r.Connections, r.TCPConnections, r.WithKeepAlives)
		}
		est := r.Timeouts[0]
		// The longest idle gap is from the last query's ACK (11:00:0i.0033) to
		// the first probe (13:00:0i.004): 7200.0007 s.
		want := TimeoutAdvice{Name: "TcpEstablishedTimeout", CurrentS: int64(tc.timeout), LongestIdleS: 7200.0007,
			NeededS: 7201, AdvisedS: 8100, Cut: tc.cut}
		est.LongestIdleS = float64(int64(est.LongestIdleS*1e4+0.5)) / 1e4
		if est != want {
			t.Errorf("%d s: timeout advice %+v, want %+v", tc.timeout, est, want)
		}
		if len(r.Conns) != 3 {
			t.Fatalf("%d connections listed", len(r.Conns))
		}
		for _, c := range r.Conns {
			if len(c.KeepAlives) != 2 || c.KeepAliveTimeS < 7199.9 || c.KeepAliveTimeS > 7200.1 {
				t.Errorf("%s: keep-alives %+v, time %v", c.Client, c.KeepAlives, c.KeepAliveTimeS)
			}
			for _, k := range c.KeepAlives {
				if !k.Answered || k.From != "server" || k.AnswerDelay != 300*time.Microsecond || k.Retry {
					t.Errorf("%s: probe %+v", c.Client, k)
				}
			}
			if c.CutInCapture != "" {
				t.Errorf("%s: cut in capture %q", c.Client, c.CutInCapture)
			}
			if (c.Cut != nil) != (tc.cut > 0) || c.Flagged != (tc.cut > 0) {
				t.Errorf("%d s: %s cut %+v flagged %v", tc.timeout, c.Client, c.Cut, c.Flagged)
			}
		}
		if tc.cut > 0 {
			c := r.Conns[0] // flagged first, in order of first packet
			if c.Client != "10.0.1.10:31578" || c.Server != "10.0.2.20:1521" {
				t.Fatalf("first connection %s -> %s", c.Client, c.Server)
			}
			// Cut an hour after the last query's ACK; the probe at 13:00 finds it gone.
			wantCut := Cut{At: story.LastQuery.Add(-2*time.Second + 3300*time.Microsecond + time.Hour),
				Timeout: "TcpEstablishedTimeout", TimeoutS: 3600, Next: story.KeepAlives[0].Add(4 * time.Millisecond),
				NextVerdict: "drop: state_expired (TcpEstablishedTimeout 3600 s)"}
			if *c.Cut != wantCut {
				t.Errorf("cut %+v\nwant %+v", *c.Cut, wantCut)
			}
			// Eleven 5-minute gaps between queries, then the two keep-alive gaps
			// (cut), then half an hour before the pool is reused.
			if len(c.Gaps) != 15 || c.Gaps[11].Cut || !c.Gaps[12].Cut || !c.Gaps[13].Cut || c.Gaps[14].Cut ||
				c.Gaps[12].State != "ESTABLISHED" || c.Gaps[12].Timeout != "TcpEstablishedTimeout" || c.Gaps[12].TimeoutS != 3600 ||
				!c.Gaps[12].Start.Equal(story.LastQuery.Add(-2*time.Second+3300*time.Microsecond)) {
				t.Errorf("gaps %+v", c.Gaps)
			}
		}
		joined := strings.Join(r.Findings, "\n")
		for _, s := range []string{
			"3 connections tracked (3 TCP), 3 with TCP keep-alives",
			"keep-alive probes come after 7200 s (2 h) of idleness",
			"RFC 5382 asks at least 7440 s (2 h 4 min)",
		} {
			if !strings.Contains(joined, s) {
				t.Errorf("%d s: findings lack %q:\n%s", tc.timeout, s, joined)
			}
		}
		if tc.cut > 0 && !strings.Contains(joined, "TcpEstablishedTimeout 3600 s (1 h) cuts 3 connections (longest idle 7200 s (2 h)): the smallest value that keeps them all is 7201 s; with a margin, 8100 s (2 h 15 min)") {
			t.Errorf("findings:\n%s", joined)
		}
		if tc.cut == 0 && !strings.Contains(joined, "TcpEstablishedTimeout 9000 s (2 h 30 min) keeps every connection") {
			t.Errorf("findings:\n%s", joined)
		}
	}
}

// TestAdviseMemory: abandoned connections linger until their timeout ends, so the
// peak of tracked connections grows with the timeout.
func TestAdviseMemory(t *testing.T) {
	start := time.Date(2007, 11, 8, 10, 0, 0, 0, time.UTC)
	path, _ := writeKeepAlives(t, synth.KeepAliveSpec{Start: start, Pooled: 2, Abandoned: 360, AbandonEvery: time.Minute})
	for _, tc := range []struct {
		timeout int
		peak    int
	}{
		// An abandoned connection opened at t lingers until t+3.3 ms+T: at any
		// start, the 60 (T=3600) or 150 (T=9000) before it are still held, plus
		// itself and the two pooled ones.
		{3600, 63},
		{9000, 153},
	} {
		r, err := Advise(path, AdviseOptions{Policy: story2Config(t, tc.timeout), BytesPerConn: 121, BytesSource: "measured"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Connections != 362 || r.WithKeepAlives != 2 {
			t.Fatalf("connections %d keep-alives %d", r.Connections, r.WithKeepAlives)
		}
		m := r.Memory
		if m == nil {
			t.Fatal("no memory figures")
		}
		want := MemPoint{TimeoutS: int64(tc.timeout), PeakConns: tc.peak, MiB: float64(tc.peak) * 121 / (1 << 20)}
		if m.Current != want {
			t.Errorf("%d s: current %+v, want %+v", tc.timeout, m.Current, want)
		}
		// Advised is 8100 s either way: 135 abandoned before, itself, 2 pooled.
		if wantAdv := (MemPoint{TimeoutS: 8100, PeakConns: 138, MiB: 138 * 121.0 / (1 << 20)}); m.Advised != wantAdv {
			t.Errorf("%d s: advised %+v, want %+v", tc.timeout, m.Advised, wantAdv)
		}
		// The curve grows with the timeout and holds the current and advised points.
		prev := -1
		var sawCur, sawAdv bool
		for _, p := range m.Curve {
			if p.PeakConns < prev {
				t.Fatalf("curve decreases at %+v", p)
			}
			prev = p.PeakConns
			sawCur = sawCur || p == m.Current
			sawAdv = sawAdv || p == m.Advised
		}
		if !sawCur || !sawAdv || len(m.Curve) < 60 {
			t.Errorf("curve of %d points, current %v advised %v", len(m.Curve), sawCur, sawAdv)
		}
		if first := m.Curve[0]; first.TimeoutS != 0 || first.PeakConns != 3 {
			t.Errorf("curve starts at %+v", first)
		}
	}
}

// TestAdviseCutInCapture: probes that nobody answers, retried, are the trace a
// firewall that already forgot the connection leaves in a capture.
func TestAdviseCutInCapture(t *testing.T) {
	start := time.Date(2007, 11, 8, 10, 0, 0, 0, time.UTC)
	path, _ := writeKeepAlives(t, synth.KeepAliveSpec{Start: start, Pooled: 1, Unanswered: true})
	r, err := Advise(path, AdviseOptions{Policy: story2Config(t, 9000)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != nil {
		t.Errorf("memory figures without a measured size: %+v", r.Memory)
	}
	c := r.Conns[0]
	if len(c.KeepAlives) != 9 || c.KeepAlives[0].Retry || !c.KeepAlives[8].Retry || c.KeepAlives[8].IdleBefore != 75*time.Second {
		t.Fatalf("probes %+v", c.KeepAlives)
	}
	want := "9 of 9 keep-alive probes got no answer, retried every 75 s: something on the path may have forgotten the connection"
	if c.CutInCapture != want || !c.Flagged || c.Cut != nil {
		t.Errorf("cut in capture %q flagged %v cut %+v", c.CutInCapture, c.Flagged, c.Cut)
	}
	if c.KeepAliveTimeS < 7199.99 || c.KeepAliveTimeS > 7200.01 {
		t.Errorf("keep-alive time %v", c.KeepAliveTimeS)
	}
}

func TestFmtSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{75 * time.Second, "75 s"},
		{7200 * time.Second, "7200 s (2 h)"},
		{7440 * time.Second, "7440 s (2 h 4 min)"},
		{8100 * time.Second, "8100 s (2 h 15 min)"},
		{3661 * time.Second, "3661 s (1 h 1 min 1 s)"},
		{300 * time.Microsecond, "0.0003 s"},
	} {
		if got := fmtSeconds(tc.d); got != tc.want {
			t.Errorf("fmtSeconds(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// With the database rule's own IdleTimeout, the advice is about that rule's
// timeout: named so, with its value, and cut or not as the rule says.
func TestAdviseRuleIdleTimeout(t *testing.T) {
	path, _ := writeStory2(t)
	const name = "IdleTimeout of rule 'Application to database'"
	for _, tc := range []struct {
		rule string
		cut  int
	}{{"7000", 3}, {"9000", 0}} {
		text, _ := synth.Story2Config(3600)
		cfg, err := config.Parse("story2.cfg", synth.SetRuleOption(text, "Application to database", "IdleTimeout", tc.rule))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Advise(path, AdviseOptions{Policy: policyOf(t, cfg), BytesPerConn: 128, BytesSource: "given"})
		if err != nil {
			t.Fatal(err)
		}
		var ta *TimeoutAdvice
		for i := range r.Timeouts {
			if r.Timeouts[i].Name == name {
				ta = &r.Timeouts[i]
			}
		}
		if ta == nil || ta.CurrentS != 7000 && tc.rule == "7000" || ta.NeededS != 7201 || ta.Cut != tc.cut {
			t.Fatalf("IdleTimeout %s: advice %+v", tc.rule, r.Timeouts)
		}
		c := r.Conns[0]
		if tc.cut > 0 && (c.Cut == nil || c.Cut.Timeout != name || c.Cut.TimeoutS != 7000 ||
			c.Cut.NextVerdict != "drop: state_expired ("+name+" 7000 s)") {
			t.Errorf("cut %+v", c.Cut)
		}
		if tc.cut == 0 && c.Cut != nil {
			t.Errorf("IdleTimeout 9000: cut %+v", c.Cut)
		}
	}
}
