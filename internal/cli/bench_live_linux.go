package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"keepstate/bench"
)

const benchLiveUsage = benchLiveLine + `

Builds the lab topology (client - firewall - server network namespaces, root) and
measures with iperf3 one TCP stream, K streams and small UDP packets, first through
keepstate run, then through the kernel's nftables with conntrack and an equivalent
ruleset, and prints each figure and the ratio.`

func runBenchLive(e *env, args []string) int {
	fs := newFlagSet(e, "bench live", benchLiveUsage)
	seconds := fs.Float64("seconds", 5, "length of each measurement")
	streams := fs.Int("streams", 4, "parallel TCP streams of the second figure")
	payload := fs.Int("payload", 64, "UDP payload bytes of the small-packet figure")
	rounds := fs.Int("rounds", 1, "alternate keepstate and the kernel this many times; print medians")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fanout := fs.String("fanout", "hash", "keepstate run --fanout: hash or cpu")
	fastPath := fs.String("fast-path", "auto", "keepstate run --fast-path: auto, on or off")
	flowtable := fs.Bool("flowtable", false, "also measure the kernel with nftables' software flow offload (flowtable)")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	if *seconds < 1 || *streams < 1 || *payload < 16 || *payload > 1400 || *rounds < 1 {
		e.errorf("bench live: want --seconds >= 1, --streams >= 1, --payload 16-1400, --rounds >= 1")
		return exitUsage
	}
	self, err := os.Executable()
	if err != nil {
		e.errorf("bench live: %v", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := bench.LiveOptions{Binary: self, Duration: time.Duration(*seconds * float64(time.Second)),
		Streams: *streams, Payload: *payload, Rounds: *rounds, Flowtable: *flowtable,
		DaemonArgs: []string{"--fanout", *fanout, "--fast-path", *fastPath}}
	if !*asJSON {
		o.Out = e.stdout
	}
	r, err := bench.RunLive(ctx, o)
	if err != nil {
		e.errorf("bench live: %v", err)
		return exitFail
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(r); err != nil {
			return exitFail
		}
		return exitOK
	}
	printBenchLive(e, r)
	return exitOK
}

func printBenchLive(e *env, r *bench.LiveResult) {
	w := e.stdout
	fmt.Fprintf(w, "\nkeepstate bench live: %s, %.0f s per figure, %d CPUs", r.Tool, r.DurationSec, r.CPUs)
	if r.Rounds > 1 {
		fmt.Fprintf(w, ", medians of %d alternating rounds", r.Rounds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-28s %16s %16s %8s\n", "", "keepstate", "kernel nft+ct", "ratio")
	row := func(name string, ks, kn, ratio float64, unit string, scale float64) {
		fmt.Fprintf(w, "  %-28s %9.2f %-6s %9.2f %-6s %7.2fx\n", name, ks/scale, unit, kn/scale, unit, ratio)
	}
	row("TCP, 1 stream", r.Keepstate.TCP1Gbps, r.Kernel.TCP1Gbps, r.Ratio.TCP1Gbps, "Gbit/s", 1)
	row(fmt.Sprintf("TCP, %d streams", r.Streams), r.Keepstate.TCPNGbps, r.Kernel.TCPNGbps, r.Ratio.TCPNGbps, "Gbit/s", 1)
	row(fmt.Sprintf("UDP %d B, delivered", r.PayloadBytes), r.Keepstate.UDPDeliveredPPS, r.Kernel.UDPDeliveredPPS, r.Ratio.UDPDeliveredPPS, "kpkt/s", 1e3)
	row(fmt.Sprintf("UDP %d B, sent", r.PayloadBytes), r.Keepstate.UDPSentPPS, r.Kernel.UDPSentPPS, r.Ratio.UDPSentPPS, "kpkt/s", 1e3)
	fmt.Fprintf(w, "  %-28s %9.1f %-6s %9.1f %-6s\n", fmt.Sprintf("UDP %d B, lost", r.PayloadBytes), r.Keepstate.UDPLostPercent, "%", r.Kernel.UDPLostPercent, "%")
	row("new connections", r.Keepstate.ConnsPerSec, r.Kernel.ConnsPerSec, r.Ratio.ConnsPerSec, "/s", 1)
	fmt.Fprintf(w, "  keepstate's CPU: %.3f ms per Gbit forwarded (TCP figures)\n", r.Keepstate.CPUMsPerGbit)
	if r.FlowtableError != "" {
		fmt.Fprintf(w, "  kernel with a flowtable: not measured: %s\n", r.FlowtableError)
	}
	if ft := r.Flowtable; ft != nil {
		fr := r.FlowtableRatio
		fmt.Fprintf(w, "  against the kernel with a flowtable: TCP 1 stream %.2f Gbit/s (%.2fx), %d streams %.2f Gbit/s (%.2fx), UDP %.0f kpkt/s (%.2fx), %.0f connections/s (%.2fx)\n",
			ft.TCP1Gbps, fr.TCP1Gbps, r.Streams, ft.TCPNGbps, fr.TCPNGbps, ft.UDPDeliveredPPS/1e3, fr.UDPDeliveredPPS, ft.ConnsPerSec, fr.ConnsPerSec)
	}
	if f := r.FastPath; f != nil {
		fmt.Fprintf(w, "  fast path (%s on %v): %d packets accepted in the kernel, %d passed up, %d hand-overs, %d taken back\n",
			f.Mode, f.Interfaces, f.Packets, f.Passed, f.HandedOut, f.TakenBack)
	}
	fmt.Fprintf(w, "  keepstate: %s, %d queue(s); %d packets decided (%d GSO), %.1f per batch; %d dropped, %d queue drops, %d netlink errors; verdict latency p50 %.0f us, p99 %.0f us\n",
		r.Backend, r.Queues, r.Packets, r.GSOPackets, r.PacketsPerCall, r.Dropped, r.QueueDrops, r.NetlinkErrors, r.LatencyP50Us, r.LatencyP99Us)
	fmt.Fprintln(w, "  targets: TCP and UDP at least 1.0x the kernel, new connections at least 0.8x")
}
