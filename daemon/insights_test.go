package daemon

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"keepstate/firewall"
	"keepstate/insight"
	"keepstate/packet"
)

// waitInsights polls the daemon over its socket until cond holds.
func (h *harness) waitInsights(what string, cond func(*InsightsResult) bool) *InsightsResult {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var res InsightsResult
		h.mustCall(&Request{Cmd: CmdInsights}, &res)
		if cond(&res) {
			return &res
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s: insights %+v", what, res.Insights)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openOf(res *InsightsResult, k insight.Kind) *insight.Insight {
	for i := range res.Insights {
		if res.Insights[i].Kind == k && res.Insights[i].Open {
			return &res.Insights[i]
		}
	}
	return nil
}

// A server answers clients whose SYNs went around the firewall: the daemon raises
// asymmetric_path within the first replies, logs it, counts it in the metrics,
// applies its fix through confirm-or-revert, and closes it once the drops stop.
func TestInsightLeakedPathLive(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.opts.MetricsAddr = "127.0.0.1:0"
	h.opts.BytesPerConnection = func() (float64, string) { return 120, "test figure" }
	h.start()

	// Three logins whose SYNs the firewall never saw: only Tomcat's SYN-ACKs come.
	for i := range 3 {
		c := newTCPConn(fmt.Sprintf("10.1.0.%d:%d", 2+i%2, 40000+i), "10.2.0.5:8080")
		c.cseq = 1001 // the SYN went around
		if d := h.plane.inject(c.fromServer(packet.SYN|packet.ACK, ""), h.clk.now()); d.Reason.String() != "handshake_not_completed" {
			t.Fatalf("SYN-ACK: %v %v", d.Action, d.Reason)
		}
		h.clk.advance(time.Second)
	}
	// It opens at the second connection; the feed is asynchronous, so wait for
	// the third.
	res := h.waitInsights("asymmetric_path", func(r *InsightsResult) bool {
		in := openOf(r, insight.AsymmetricPath)
		return in != nil && in.Count == 3
	})
	in := openOf(res, insight.AsymmetricPath)
	if in.Figures["connections"] != 3 || in.Figures["syn_acks"] != 3 || in.Count != 3 ||
		!strings.HasPrefix(in.Summary, "10.2.0.5:8080 answers 10.1.0.0/24 on 3 connections whose requests never crossed the firewall") {
		t.Fatalf("insight: %+v", in)
	}
	if !strings.Contains(in.Evidence.Samples[0].Explain, "keepstate explain --config "+h.opts.ConfigPath+" 'tcp 10.2.0.5:8080 > 10.1.0.2:40000 flags S. seq 5000 ack 1001") {
		t.Errorf("explain: %s", in.Evidence.Samples[0].Explain)
	}
	if len(res.Changes) == 0 || res.Changes[0].Event != "opened" || res.Seq == 0 {
		t.Errorf("changes %+v seq %d", res.Changes, res.Seq)
	}
	// --follow asks for what came after the last change it saw.
	var later InsightsResult
	h.mustCall(&Request{Cmd: CmdInsights, After: res.Seq}, &later)
	if len(later.Changes) != 0 {
		t.Errorf("changes after %d: %+v", res.Seq, later.Changes)
	}
	h.waitLog("warning.log", "insight "+in.ID+" opened (asymmetric_path, critical): 10.2.0.5:8080 answers 10.1.0.0/24")

	body := h.scrape()
	for _, want := range []string{`keepstate_insights_open{kind="asymmetric_path"} 1`, `keepstate_insights_open{kind="keepalive_outlives_timeout"} 0`} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Apply its narrowest fix, with a confirmation deadline.
	if err := h.call(&Request{Cmd: CmdInsightApply, ID: in.ID}, nil); err == nil || !strings.Contains(err.Error(), "confirm_within") {
		t.Errorf("apply without a deadline: %v", err)
	}
	var applied ApplyInsightResult
	h.mustCall(&Request{Cmd: CmdInsightApply, ID: in.ID, ConfirmWithin: "1m"}, &applied)
	if applied.Import.Pending == nil || !applied.Fix.Applicable || applied.Fix.Title == "" {
		t.Fatalf("applied: %+v", applied)
	}
	if st := h.status(); st.Pending == nil || !strings.HasPrefix(st.Pending.Source, "insight "+in.ID) {
		t.Fatalf("status after apply: %+v", st.Pending)
	}
	// The next login's reply is picked up.
	c := newTCPConn("10.1.0.2:41000", "10.2.0.5:8080")
	c.cseq = 1001
	if d := h.plane.inject(c.fromServer(packet.SYN|packet.ACK, ""), h.clk.now()); d.Action != firewall.Accept {
		t.Fatalf("after the fix: %v %v", d.Action, d.Reason)
	}
	h.mustCall(&Request{Cmd: CmdConfigConfirm}, nil)

	// No dropped reply for the quiet time: the insight closes.
	h.clk.advance(3 * time.Minute)
	res = h.waitInsights("closed", func(r *InsightsResult) bool { return openOf(r, insight.AsymmetricPath) == nil })
	if len(res.Insights) != 1 || res.Insights[0].Open || res.Insights[0].Closed.IsZero() {
		t.Errorf("after the quiet time: %+v", res.Insights)
	}
	h.waitLog("warning.log", "insight "+in.ID+" closed (asymmetric_path)")
	if body := h.scrape(); !strings.Contains(body, `keepstate_insights_open{kind="asymmetric_path"} 0`+"\n") {
		t.Errorf("metrics after close:\n%s", body)
	}
}

func (h *harness) scrape() string {
	h.t.Helper()
	resp, err := http.Get(h.status().MetricsURL)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitLog waits for a line containing want in log file name.
func (h *harness) waitLog(name, want string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.d.logs.logger.Flush()
		if strings.Contains(h.readLog(name), want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s lacks %q:\n%s", name, want, h.readLog(name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
