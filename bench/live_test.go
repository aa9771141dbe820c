//go:build linux

package bench

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/lab"
)

// Reports as iperf3 3.12 writes them with -J (trimmed to what we read).
const (
	iperfUDPReport = `{"start":{},"intervals":[],"end":{
	"sum_sent":{"start":0,"end":2.0,"seconds":2.0,"bytes":6400000,"bits_per_second":25600000,"packets":100000,"lost_packets":0,"lost_percent":0,"sender":true},
	"sum_received":{"start":0,"end":2.5,"seconds":2.5,"bytes":4800000,"bits_per_second":15360000,"packets":100000,"lost_packets":25000,"lost_percent":25,"sender":false}}}`
	iperfTCPReport = `{"end":{"sum_sent":{"seconds":5,"bytes":10,"bits_per_second":7.5e9,"retransmits":3},
	"sum_received":{"seconds":5.01,"bytes":10,"bits_per_second":7.25e9}}}`
	iperfErrorReport = `{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}`
)

func TestParseIperf(t *testing.T) {
	rep, err := parseIperf([]byte(iperfUDPReport))
	if err != nil {
		t.Fatal(err)
	}
	sent, delivered, lost, err := rep.udp()
	if err != nil {
		t.Fatal(err)
	}
	if sent != 50000 || delivered != 30000 || lost != 25 {
		t.Errorf("udp: sent %v delivered %v lost %v, want 50000 30000 25", sent, delivered, lost)
	}

	rep, err = parseIperf([]byte(iperfTCPReport))
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.End.SumReceived.BitsPerSecond; got != 7.25e9 {
		t.Errorf("TCP received %v bit/s, want 7.25e9 (the receiver's figure)", got)
	}
	if _, _, _, err := rep.udp(); err == nil {
		t.Error("a TCP report read as UDP figures: want an error")
	}

	rep, err = parseIperf([]byte(iperfErrorReport))
	if err != nil || rep.Error != "unable to connect to server: Connection refused" {
		t.Errorf("error report: %+v, %v", rep, err)
	}
	for _, bad := range []string{"", "iperf3: error - unable to connect", `{"end":`} {
		if _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("parseIperf(%q): want an error", bad)
		}
	}
}

func TestMedianFigures(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(append([]float64(nil), tc.in...)); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	got := medianFigures([]LiveFigures{{TCP1Gbps: 1, UDPLostPercent: 9}, {TCP1Gbps: 7, UDPLostPercent: 1}, {TCP1Gbps: 3, UDPLostPercent: 5}})
	if got.TCP1Gbps != 3 || got.UDPLostPercent != 5 {
		t.Errorf("medianFigures: %+v, want TCP1 3, lost 5", got)
	}
}

// The kernel's ruleset is the lab policy's equivalent, with the state rules the
// reference measured.
func TestKernelRuleset(t *testing.T) {
	rs := kernelRuleset()
	for _, want := range []string{
		"type filter hook forward priority filter; policy drop;",
		"ct state established,related accept",
		"ct state invalid drop",
		`iifname "lan0" ip saddr 10.201.1.0/24 ip daddr 10.201.2.0/24 tcp dport 5201 accept`,
		`iifname "lan0" ip saddr 10.201.1.0/24 ip daddr 10.201.2.0/24 udp dport 5201 accept`,
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
}

// A short live run end to end: both data paths measured, every figure positive,
// nothing dropped by keepstate. Root, iperf3 and nft needed.
func TestRunLiveShort(t *testing.T) {
	if why := lab.Missing("iperf3", "nft"); why != "" {
		t.Skip(why)
	}
	bin := filepath.Join(t.TempDir(), "keepstate")
	if out, err := exec.Command("go", "build", "-o", bin, "keepstate/cmd/keepstate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	r, err := RunLive(ctx, LiveOptions{Binary: bin, Duration: time.Second, Streams: 2, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]LiveFigures{"keepstate": r.Keepstate, "kernel": r.Kernel} {
		if f.TCP1Gbps <= 0 || f.TCPNGbps <= 0 || f.UDPSentPPS <= 0 || f.UDPDeliveredPPS <= 0 || f.ConnsPerSec <= 0 {
			t.Errorf("%s: a figure is not positive: %+v", name, f)
		}
	}
	if r.Packets == 0 || r.Dropped != 0 || r.Backend == "" {
		t.Errorf("keepstate counters: %d packets decided, %d dropped, backend %q", r.Packets, r.Dropped, r.Backend)
	}
	// The fast path is on by default where the kernel takes it (CI's does): the
	// streams' packets must then have been accepted in the kernel.
	if f := r.FastPath; f != nil && (f.Packets == 0 || f.HandedOut == 0 || len(f.Interfaces) != 2) {
		t.Errorf("fast path did not carry the traffic: %+v", f)
	}
	if r.Keepstate.CPUMsPerGbit <= 0 {
		t.Errorf("keepstate's CPU per Gbit not measured: %v", r.Keepstate.CPUMsPerGbit)
	}
	if r.Ratio.TCP1Gbps != r.Keepstate.TCP1Gbps/r.Kernel.TCP1Gbps {
		t.Errorf("ratio %v, want %v", r.Ratio.TCP1Gbps, r.Keepstate.TCP1Gbps/r.Kernel.TCP1Gbps)
	}
	if len(r.KeepstateRounds) != 1 || len(r.KernelRounds) != 1 {
		t.Errorf("rounds: %d and %d, want 1 each", len(r.KeepstateRounds), len(r.KernelRounds))
	}
}

// iperf3's output is read, never trusted: whatever it prints, parsing returns an
// error or figures that are finite and not negative.
func FuzzParseIperf(f *testing.F) {
	for _, s := range []string{iperfUDPReport, iperfTCPReport, iperfErrorReport, "", "{}", `{"end":{"sum_sent":{"seconds":-1}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := parseIperf(data)
		if err != nil {
			return
		}
		sent, delivered, lost, err := rep.udp()
		if err != nil {
			return
		}
		for _, v := range []float64{sent, delivered} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("figures %v %v %v from %q", sent, delivered, lost, data)
			}
		}
	})
}

func TestUDPFiguresImpossible(t *testing.T) {
	rep, err := parseIperf([]byte(`{"end":{"sum_sent":{"seconds":1e-300,"packets":1e300},"sum_received":{"seconds":1,"packets":5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := rep.udp(); err == nil {
		t.Error("an infinite packet rate was accepted")
	}
}
