package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
)

func TestMetrics(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.opts.MetricsAddr = "127.0.0.1:0"
	h.start()
	h.handshake(newTCPConn("10.1.0.2:40000", "10.2.0.5:8080"))
	stray := newTCPConn("10.1.0.3:40001", "10.2.0.5:8080")
	h.plane.inject(stray.fromServer(packet.ACK, ""), h.clk.now())
	h.plane.inject(stray.fromServer(packet.ACK, ""), h.clk.now())

	url := h.status().MetricsURL
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics URL %q", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		"keepstate_packets_total 5",
		"keepstate_packets_accepted_total 3",
		`keepstate_packets_dropped_total{reason="handshake_not_completed"} 2`,
		`keepstate_packets_dropped_total{reason="out_of_window"} 0`,
		"keepstate_conntrack_connections 1",
		"keepstate_conntrack_created_total 1",
		"keepstate_conntrack_evictions_total 0",
		"keepstate_conntrack_rst_inexact_total 0",
		`keepstate_queue_drops_total{where="queue_full"} 3`,
		`keepstate_queue_drops_total{where="user"} 2`,
		`keepstate_queue_drops_total{where="socket_overflow"} 1`,
		"keepstate_netlink_errors_total 4",
		"keepstate_queue_packets_total 5",
		`keepstate_verdict_latency_seconds_bucket{le="1e-06"} 5`,
		`keepstate_verdict_latency_seconds_bucket{le="2e-06"} 7`,
		`keepstate_verdict_latency_seconds_bucket{le="+Inf"} 8`,
		"keepstate_verdict_latency_seconds_count 8",
		"keepstate_config_generation 1",
		"keepstate_config_pending_confirmation 0",
	} {
		if !lines[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(string(body), "\ngo_goroutines ") {
		t.Error("no Go runtime metrics")
	}
}

// TestStartFailsCleanly: a second daemon on the same --state stops at New; a
// metrics address that is not loopback, or a second daemon on a live socket, stops
// Start before any data plane exists.
func TestStartFailsCleanly(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()

	planes := 0
	o := h.opts
	o.NewPlane = func(*firewall.Engine, *dataplane.Reporter) (DataPlane, error) { planes++; return &fakePlane{}, nil }
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "--state "+o.StatePath+" is in use by another keepstate (pid ") {
		t.Errorf("second daemon on the same --state: %v", err)
	}
	o.StatePath = h.dir + "/other/conntrack.snap"
	second, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "another keepstate is running") {
		t.Errorf("second daemon on a live socket: %v", err)
	}
	second.Stop()
	if st := h.status(); st.Backend != "fake" {
		t.Errorf("first daemon disturbed: %+v", st)
	}

	o.SocketPath = h.dir + "/other.sock"
	o.MetricsAddr = "0.0.0.0:0"
	third, _ := New(o)
	if err := third.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("metrics on 0.0.0.0: %v", err)
	}
	third.Stop()
	if _, err := os.Stat(o.SocketPath); !os.IsNotExist(err) {
		t.Errorf("socket of a failed start left behind: %v", err)
	}
	if planes != 0 {
		t.Errorf("%d data plane(s) built by failed starts", planes)
	}
}
