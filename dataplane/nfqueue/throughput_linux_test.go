//go:build linux

package nfqueue

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestThroughput measures iperf3 through the lab: plain forwarding, the kernel's
// nftables with conntrack (the baseline), and keepstate. It takes about a
// minute, so it runs only with KEEPSTATE_NFQUEUE_BENCH=1:
//
//	KEEPSTATE_NFQUEUE_BENCH=1 go test -run TestThroughput -v ./dataplane/nfqueue
func TestThroughput(t *testing.T) {
	if os.Getenv("KEEPSTATE_NFQUEUE_BENCH") == "" {
		t.Skip("set KEEPSTATE_NFQUEUE_BENCH=1 to measure throughput")
	}
	needRoot(t, "iperf3", "nft")
	secs := 5
	if s := os.Getenv("KEEPSTATE_NFQUEUE_BENCH_SECONDS"); s != "" {
		fmt.Sscan(s, &secs)
	}
	rounds := 1
	if s := os.Getenv("KEEPSTATE_NFQUEUE_BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	type result struct{ tcp1, tcp4, udpPPS float64 }
	scenarios := []struct {
		name  string
		setup func(l *lab) func() Stats // returns the plane's stats, or nil
	}{
		{"plain forwarding", func(l *lab) func() Stats { return nil }},
		{"kernel nftables + conntrack", func(l *lab) func() Stats {
			cmd := exec.Command("ip", "netns", "exec", l.fw, "nft", "-f", "-")
			cmd.Stdin = strings.NewReader(kernelBaseline)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nft: %v\n%s", err, out)
			}
			return nil
		}},
		{"keepstate (nfqueue)", func(l *lab) func() Stats {
			eng := labEngine(t)
			p := l.startPlane(t, Options{Engine: eng})
			return func() Stats {
				c := eng.Counters()
				if drops := c.Dropped.Map(); len(drops) > 0 {
					t.Logf("    engine drops: %v", drops)
				}
				return p.Stats()
			}
		}},
	}
	// Rounds interleave the scenarios so that load from elsewhere on the machine
	// spreads over all of them; each figure is the median of its rounds.
	all := make([][]result, len(scenarios))
	for round := 0; round < rounds; round++ {
		for i, sc := range scenarios {
			l := newLab(t)
			stats := sc.setup(l)
			var r result
			r.tcp1 = l.iperfTCP(t, secs, 1)
			r.tcp4 = l.iperfTCP(t, secs, 4)
			r.udpPPS, _ = l.iperfUDP(t, secs)
			all[i] = append(all[i], r)
			t.Logf("round %d %-28s TCP 1 stream %6.2f Gbit/s, 4 streams %6.2f Gbit/s, UDP 64 B %7.0f pkt/s delivered",
				round+1, sc.name, r.tcp1/1e9, r.tcp4/1e9, r.udpPPS)
			if stats != nil {
				s := stats()
				t.Logf("    keepstate: %d packets (%d GSO, %d dropped) in %d batches, %d verdict messages; netlink errors %d, overflows %d, kernel queue_dropped %d user_dropped %d; held p50 %v p99 %v",
					s.Packets, s.GSO, s.Dropped, s.Batches, s.VerdictMessages, s.NetlinkErrors, s.SocketOverflows, s.QueueDropped, s.UserDropped,
					s.Latency.Quantile(0.5), s.Latency.Quantile(0.99))
			}
		}
	}
	med := make([]result, len(scenarios))
	for i, rs := range all {
		med[i] = result{
			tcp1:   median(rs, func(r result) float64 { return r.tcp1 }),
			tcp4:   median(rs, func(r result) float64 { return r.tcp4 }),
			udpPPS: median(rs, func(r result) float64 { return r.udpPPS }),
		}
		t.Logf("median of %d: %-28s TCP 1 stream %6.2f Gbit/s, 4 streams %6.2f Gbit/s, UDP 64 B %7.0f pkt/s",
			rounds, scenarios[i].name, med[i].tcp1/1e9, med[i].tcp4/1e9, med[i].udpPPS)
	}
	base, ks := med[1], med[2]
	t.Logf("keepstate / kernel nftables: TCP 1 stream %.2fx, 4 streams %.2fx, UDP 64 B %.2fx",
		ks.tcp1/base.tcp1, ks.tcp4/base.tcp4, ks.udpPPS/base.udpPPS)
}

// kernelBaseline is the comparison: the kernel's own stateful filter with
// an equivalent ruleset.
const kernelBaseline = `table inet bench {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan0" tcp dport 52011 accept
		iifname "lan0" udp dport 52011 accept
	}
}
`

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// iperf3 runs an iperf3 client in the client namespace against a one-off server
// in the server namespace and returns its JSON report.
func (l *lab) iperf3(t *testing.T, args ...string) map[string]any {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", l.server, "iperf3", "-s", "-1", "-p", fmt.Sprint(portIperf))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	cargs := append([]string{"netns", "exec", l.client, "iperf3", "-c", serverAddr.String(), "-p", fmt.Sprint(portIperf), "-J"}, args...)
	out, err := exec.Command("ip", cargs...).Output()
	if err != nil {
		t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
	}
	var rep map[string]any
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("iperf3 report: %v", err)
	}
	return rep
}

func jsonPath(m map[string]any, keys ...string) float64 {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return 0
		}
		v = mm[k]
	}
	f, _ := v.(float64)
	return f
}

// iperfTCP returns the received bits per second of n parallel TCP streams.
func (l *lab) iperfTCP(t *testing.T, secs, n int) float64 {
	rep := l.iperf3(t, "-t", fmt.Sprint(secs), "-P", fmt.Sprint(n))
	return jsonPath(rep, "end", "sum_received", "bits_per_second")
}

// iperfUDP sends 64-byte UDP datagrams as fast as the sender can and returns the
// datagrams per second delivered and the percentage lost.
func (l *lab) iperfUDP(t *testing.T, secs int) (float64, float64) {
	rep := l.iperf3(t, "-u", "-l", "64", "-b", "0", "-t", fmt.Sprint(secs))
	pkts := jsonPath(rep, "end", "sum", "packets")
	lost := jsonPath(rep, "end", "sum", "lost_packets")
	lossPct := jsonPath(rep, "end", "sum", "lost_percent")
	return (pkts - lost) / float64(secs), lossPct
}
