//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"keepstate/daemon"
	"keepstate/lab"
)

// `keepstate bench live` measures forwarded traffic through the lab topology
// (client - firewall - server namespaces joined by veths), first through keepstate
// run, then through the kernel's own nftables with connection tracking and an
// equivalent ruleset, on the same topology in the same run, with iperf3: the tool
// whose figures readers know, and the one the reference figures were taken with.

// LiveOptions configure a live measurement.
type LiveOptions struct {
	Binary   string        // keepstate executable run as the daemon
	Duration time.Duration // per figure (default 5 s)
	Streams  int           // parallel TCP streams of the second figure (default 4)
	Payload  int           // UDP payload bytes of the small-packet figure (default 64)
	// Rounds alternate keepstate and the kernel this many times; each figure is
	// the median over the rounds, so that a load that comes and goes on a shared
	// machine weighs on both sides alike (default 1).
	Rounds int
	// DaemonArgs are added to `keepstate run`'s command line, e.g. --fanout cpu.
	DaemonArgs []string
	// Flowtable also measures the kernel with its software flow offload (an
	// nftables flowtable), in the same rounds.
	Flowtable bool
	// ConnWorkers open short connections in parallel for the connection-rate
	// figure (default 4).
	ConnWorkers int
	Out         io.Writer // progress lines; nil: none
}

// LiveFigures are one data path's figures.
type LiveFigures struct {
	TCP1Gbps        float64 `json:"tcp_1_stream_gbps"`
	TCPNGbps        float64 `json:"tcp_n_streams_gbps"`
	UDPSentPPS      float64 `json:"udp_sent_pps"`
	UDPDeliveredPPS float64 `json:"udp_delivered_pps"`
	UDPLostPercent  float64 `json:"udp_lost_percent"`
	// ConnsPerSec is how many short TCP connections (handshake, the server's
	// close, the client's) completed per second.
	ConnsPerSec float64 `json:"new_connections_per_s"`
	// CPUMsPerGbit is the CPU time keepstate's process used per gigabit
	// forwarded, over the two TCP figures (keepstate only).
	CPUMsPerGbit float64 `json:"cpu_ms_per_gbit,omitempty"`
}

// LiveResult is what `keepstate bench live --json` prints.
type LiveResult struct {
	Tool          string      `json:"tool"`
	DurationSec   float64     `json:"duration_s"`
	Streams       int         `json:"streams"`
	Rounds        int         `json:"rounds"`
	PayloadBytes  int         `json:"udp_payload_bytes"`
	CPUs          int         `json:"cpus"`
	Keepstate     LiveFigures `json:"keepstate"`
	Kernel        LiveFigures `json:"kernel_nftables_conntrack"`
	KernelRuleset string      `json:"kernel_ruleset"`
	// Flowtable: the kernel with nftables' software flow offload, when asked for.
	Flowtable        *LiveFigures  `json:"kernel_flowtable,omitempty"`
	FlowtableRatio   *LiveFigures  `json:"ratio_flowtable,omitempty"` // keepstate / kernel with flowtable
	FlowtableRounds  []LiveFigures `json:"kernel_flowtable_rounds,omitempty"`
	FlowtableRuleset string        `json:"kernel_flowtable_ruleset,omitempty"`
	// FlowtableError says why the flowtable could not be measured (a kernel
	// built without CONFIG_NF_FLOW_TABLE refuses the ruleset).
	FlowtableError string      `json:"kernel_flowtable_error,omitempty"`
	Ratio          LiveFigures `json:"ratio"` // keepstate / kernel, figure by figure (UDPLostPercent: unused)
	// Every round's figures, in order; Keepstate and Kernel are their medians.
	KeepstateRounds []LiveFigures `json:"keepstate_rounds"`
	KernelRounds    []LiveFigures `json:"kernel_rounds"`

	// What keepstate's data plane said about its run.
	Backend        string  `json:"backend"`
	Queues         int     `json:"queues"`
	Packets        uint64  `json:"packets"`
	GSOPackets     uint64  `json:"gso_packets"`
	Dropped        uint64  `json:"dropped"`
	QueueDrops     uint64  `json:"queue_drops"`
	NetlinkErrors  uint64  `json:"netlink_errors"`
	LatencyP50Us   float64 `json:"verdict_latency_p50_us"`
	LatencyP99Us   float64 `json:"verdict_latency_p99_us"`
	PacketsPerCall float64 `json:"packets_per_batch"`
	// DropsByReason are the engine's drops in the last round.
	DropsByReason map[string]uint64 `json:"drops_by_reason,omitempty"`
	// FastPath is the kernel fast path's part of the last round; nil when off.
	FastPath *daemon.FastPathStats `json:"fast_path,omitempty"`
}

// kernelRuleset is the kernel's equivalent of the lab configuration: established
// and related pass, invalid dropped, new connections to the bench port from the
// LAN permitted, everything else dropped.
func kernelRuleset() string {
	return fmt.Sprintf(`table inet ksbench {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname %q ip saddr %s ip daddr %s tcp dport %d accept
		iifname %q ip saddr %s ip daddr %s udp dport %d accept
	}
}
`, lab.LANDevice, lab.ClientNet, lab.ServerNet, lab.PortBench, lab.LANDevice, lab.ClientNet, lab.ServerNet, lab.PortBench)
}

// flowtableRuleset is kernelRuleset with the kernel's software flow offload:
// established TCP and UDP flows are added to a flowtable on both devices, whose
// packets then skip the forward chain (and conntrack's per-packet work) at
// ingress.
func flowtableRuleset() string {
	return fmt.Sprintf(`table inet ksbench {
	flowtable ft {
		hook ingress priority filter
		devices = { %s, %s }
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established meta l4proto { tcp, udp } flow add @ft
		ct state established,related accept
		ct state invalid drop
		iifname %q ip saddr %s ip daddr %s tcp dport %d accept
		iifname %q ip saddr %s ip daddr %s udp dport %d accept
	}
}
`, lab.LANDevice, lab.DMZDevice, lab.LANDevice, lab.ClientNet, lab.ServerNet, lab.PortBench, lab.LANDevice, lab.ClientNet, lab.ServerNet, lab.PortBench)
}

// RunLive builds a lab topology, measures keepstate and then the kernel, and
// removes everything.
func RunLive(ctx context.Context, o LiveOptions) (res *LiveResult, err error) {
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Streams <= 0 {
		o.Streams = 4
	}
	if o.Payload <= 0 {
		o.Payload = 64
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.ConnWorkers <= 0 {
		o.ConnWorkers = 4
	}
	if why := lab.Missing("iperf3", "nft"); why != "" {
		return nil, errors.New(why + " (Debian: apt-get install iperf3 nftables)")
	}
	res = &LiveResult{DurationSec: o.Duration.Seconds(), Streams: o.Streams, Rounds: o.Rounds, PayloadBytes: o.Payload,
		CPUs: runtime.NumCPU(), KernelRuleset: kernelRuleset()}
	if v, err := exec.Command("iperf3", "--version").Output(); err == nil {
		res.Tool = firstLine(string(v))
	}

	topo, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, topo.Close()) }()
	dir, err := os.MkdirTemp("", "ksbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m := &meter{ctx: ctx, topo: topo, o: o, dir: dir}
	if err := m.startIperf(); err != nil {
		return nil, err
	}
	defer m.stopIperf()
	if o.Flowtable {
		res.FlowtableRuleset = flowtableRuleset()
	}
	for round := 1; round <= o.Rounds; round++ {
		ks, err := m.keepstate(round, res)
		if err != nil {
			return nil, err
		}
		kn, err := m.kernel(round, res.KernelRuleset)
		if err != nil {
			return nil, err
		}
		res.KeepstateRounds = append(res.KeepstateRounds, ks)
		res.KernelRounds = append(res.KernelRounds, kn)
		if o.Flowtable && res.FlowtableError == "" {
			ft, err := m.kernel(round, res.FlowtableRuleset)
			var ne *nftError
			switch {
			case errors.As(err, &ne):
				res.FlowtableError = ne.Error()
				fmt.Fprintf(o.Out, "  the kernel refuses the flowtable: %v\n", ne)
			case err != nil:
				return nil, err
			default:
				res.FlowtableRounds = append(res.FlowtableRounds, ft)
			}
		}
	}
	res.Keepstate, res.Kernel = medianFigures(res.KeepstateRounds), medianFigures(res.KernelRounds)
	res.Ratio = ratios(res.Keepstate, res.Kernel)
	if len(res.FlowtableRounds) > 0 {
		ft := medianFigures(res.FlowtableRounds)
		r := ratios(res.Keepstate, ft)
		res.Flowtable, res.FlowtableRatio = &ft, &r
	}
	return res, nil
}

func ratios(a, b LiveFigures) LiveFigures {
	return LiveFigures{
		TCP1Gbps:        ratio(a.TCP1Gbps, b.TCP1Gbps),
		TCPNGbps:        ratio(a.TCPNGbps, b.TCPNGbps),
		UDPSentPPS:      ratio(a.UDPSentPPS, b.UDPSentPPS),
		UDPDeliveredPPS: ratio(a.UDPDeliveredPPS, b.UDPDeliveredPPS),
		ConnsPerSec:     ratio(a.ConnsPerSec, b.ConnsPerSec),
	}
}

func (r *LiveResult) fillStats(st *daemon.Stats) {
	p := &st.Plane
	r.Backend = p.Backend
	r.Queues = len(p.Queues)
	r.Packets = p.Packets
	r.GSOPackets = p.GSO
	r.Dropped = st.Dropped
	r.DropsByReason = map[string]uint64{}
	for k, v := range st.DropsByReason {
		if v > 0 {
			r.DropsByReason[k] = v
		}
	}
	r.FastPath = p.FastPath
	r.QueueDrops = st.QueueDrops
	r.NetlinkErrors = st.NetlinkErrors
	r.LatencyP50Us = float64(p.Latency.Quantile(0.5)) / 1e3
	r.LatencyP99Us = float64(p.Latency.Quantile(0.99)) / 1e3
	if p.Batches > 0 {
		r.PacketsPerCall = float64(p.Packets) / float64(p.Batches)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func (m *meter) startIperf() error {
	stop, err := startIperfServer(m.ctx, m.topo)
	m.iperfStop = stop
	return err
}

func (m *meter) stopIperf() {
	if m.iperfStop != nil {
		m.iperfStop()
		m.iperfStop = nil
	}
}

// startIperfServer runs iperf3 -s in the server namespace and waits until it
// listens. The returned function stops it.
func startIperfServer(ctx context.Context, topo *lab.Topology) (func(), error) {
	cmd := exec.Command("ip", "netns", "exec", topo.Server, "iperf3", "-s", "-B", lab.ServerAddr.String(),
		"-p", strconv.Itoa(lab.PortBench))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := topo.Exec(ctx, topo.Server, "ss", "-Hltn", "sport", "=", ":"+strconv.Itoa(lab.PortBench))
		if err == nil && strings.TrimSpace(out) != "" {
			return stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("iperf3 server did not listen within 10 s (%v)", errors.Join(err, ctx.Err()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// meter runs iperf3 clients in the client namespace.
type meter struct {
	ctx  context.Context
	topo *lab.Topology
	o    LiveOptions
	dir  string

	iperfStop func()
}

// keepstate measures through keepstate run; the data plane's counters of the
// last round go into res.
func (m *meter) keepstate(round int, res *LiveResult) (LiveFigures, error) {
	fmt.Fprintf(m.o.Out, "round %d/%d: keepstate run in %s\n", round, m.o.Rounds, m.topo.Firewall)
	// Kerio's per-source limits (600 connections, 600 new per minute) would cap
	// the connection-rate figure; the kernel's ruleset has none either.
	cfg, err := lab.WriteConfig(m.dir, "bench", map[string]string{"ConnLimitPerSource": "0", "NewConnLimitPerSourcePerMinute": "0"})
	if err != nil {
		return LiveFigures{}, err
	}
	d, err := lab.StartDaemon(m.ctx, m.topo, lab.DaemonOptions{Binary: m.o.Binary, Dir: m.dir, Config: cfg, Args: m.o.DaemonArgs})
	if err != nil {
		return LiveFigures{}, err
	}
	f, err := m.figures(d.CPUTime)
	if err == nil {
		var st daemon.Stats
		if st, err = d.Stats(m.ctx); err == nil {
			res.fillStats(&st)
		}
	}
	// A stop with fail closed leaves the hooks: the kernel's round must not run
	// into them.
	return f, errors.Join(err, d.Stop(), d.Unhook(m.ctx))
}

// kernel measures through the kernel's nftables with conntrack, then removes
// the ruleset.
func (m *meter) kernel(round int, ruleset string) (LiveFigures, error) {
	fmt.Fprintf(m.o.Out, "round %d/%d: kernel nftables with conntrack in %s\n", round, m.o.Rounds, m.topo.Firewall)
	nft := exec.CommandContext(m.ctx, "ip", "netns", "exec", m.topo.Firewall, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(ruleset)
	if out, err := nft.CombinedOutput(); err != nil {
		return LiveFigures{}, &nftError{fmt.Sprintf("nft: %v: %s", err, firstLine(string(out)))}
	}
	f, err := m.figures(nil)
	_, derr := m.topo.Exec(context.Background(), m.topo.Firewall, "nft", "delete", "table", "inet", "ksbench")
	return f, errors.Join(err, derr)
}

// nftError is the kernel refusing a ruleset.
type nftError struct{ msg string }

func (e *nftError) Error() string { return e.msg }

// medianFigures takes each figure's median over the rounds.
func medianFigures(rounds []LiveFigures) LiveFigures {
	pick := func(get func(LiveFigures) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = get(r)
		}
		return median(v)
	}
	return LiveFigures{
		TCP1Gbps:        pick(func(f LiveFigures) float64 { return f.TCP1Gbps }),
		TCPNGbps:        pick(func(f LiveFigures) float64 { return f.TCPNGbps }),
		UDPSentPPS:      pick(func(f LiveFigures) float64 { return f.UDPSentPPS }),
		UDPDeliveredPPS: pick(func(f LiveFigures) float64 { return f.UDPDeliveredPPS }),
		UDPLostPercent:  pick(func(f LiveFigures) float64 { return f.UDPLostPercent }),
		ConnsPerSec:     pick(func(f LiveFigures) float64 { return f.ConnsPerSec }),
		CPUMsPerGbit:    pick(func(f LiveFigures) float64 { return f.CPUMsPerGbit }),
	}
}

// figures measures one data path; cpu, if not nil, reads the CPU time of the
// process doing the filtering.
func (m *meter) figures(cpu func() time.Duration) (LiveFigures, error) {
	var f LiveFigures
	var err error
	var cpu0 time.Duration
	if cpu != nil {
		cpu0 = cpu()
	}
	if f.TCP1Gbps, err = m.tcp(1); err != nil {
		return f, err
	}
	fmt.Fprintf(m.o.Out, "  TCP, 1 stream       %8.2f Gbit/s\n", f.TCP1Gbps)
	if f.TCPNGbps, err = m.tcp(m.o.Streams); err != nil {
		return f, err
	}
	fmt.Fprintf(m.o.Out, "  TCP, %d streams      %8.2f Gbit/s\n", m.o.Streams, f.TCPNGbps)
	if gbit := (f.TCP1Gbps + f.TCPNGbps) * m.o.Duration.Seconds(); cpu != nil && gbit > 0 {
		f.CPUMsPerGbit = float64(cpu()-cpu0) / 1e6 / gbit
		fmt.Fprintf(m.o.Out, "  keepstate's CPU     %8.3f ms per Gbit forwarded\n", f.CPUMsPerGbit)
	}
	if f.UDPSentPPS, f.UDPDeliveredPPS, f.UDPLostPercent, err = m.udp(); err != nil {
		return f, err
	}
	fmt.Fprintf(m.o.Out, "  UDP, %d-byte payload %8.0f packets/s delivered of %.0f sent (%.1f %% lost)\n",
		m.o.Payload, f.UDPDeliveredPPS, f.UDPSentPPS, f.UDPLostPercent)
	if f.ConnsPerSec, err = m.conns(); err != nil {
		return f, err
	}
	fmt.Fprintf(m.o.Out, "  new connections     %8.0f per second (%d clients)\n", f.ConnsPerSec, m.o.ConnWorkers)
	return f, nil
}

// conns measures short connections per second to the bench port: the iperf3
// server makes way for a listener that closes every connection it accepts, and
// ConnWorkers clients in the client namespace connect, read to the end and
// close, for the measurement's duration.
func (m *meter) conns() (float64, error) {
	m.stopIperf()
	defer func() { _ = m.startIperf() }()
	var ln net.Listener
	err := lab.Do(m.topo.Server, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(lab.ServerAddr, uint16(lab.PortBench)).String())
		return err
	})
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	deadline := time.Now().Add(m.o.Duration)
	counts := make([]int, m.o.ConnWorkers)
	errs := make([]error, m.o.ConnWorkers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range m.o.ConnWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = lab.Do(m.topo.Client, func() error {
				addr := netip.AddrPortFrom(lab.ServerAddr, uint16(lab.PortBench)).String()
				d := net.Dialer{Timeout: 3 * time.Second}
				buf := make([]byte, 16)
				for time.Now().Before(deadline) && m.ctx.Err() == nil {
					c, err := d.DialContext(m.ctx, "tcp4", addr)
					if err != nil {
						return err
					}
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
					for {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
					c.Close()
					counts[w]++
				}
				return nil
			})
		}()
	}
	wg.Wait()
	took := time.Since(start).Seconds()
	total := 0
	for _, n := range counts {
		total += n
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("short connections (%d completed): %w", total, err)
	}
	return float64(total) / took, nil
}

func (m *meter) iperf(args ...string) (*iperfReport, error) {
	secs := strconv.FormatFloat(m.o.Duration.Seconds(), 'f', -1, 64)
	all := append([]string{"iperf3", "-c", lab.ServerAddr.String(), "-p", strconv.Itoa(lab.PortBench), "-t", secs, "-J"}, args...)
	ctx, cancel := context.WithTimeout(m.ctx, m.o.Duration+30*time.Second)
	defer cancel()
	out, err := m.topo.Exec(ctx, m.topo.Client, all...)
	rep, perr := parseIperf([]byte(out))
	if perr == nil && rep.Error != "" {
		perr = errors.New("iperf3: " + rep.Error)
	}
	if err != nil || perr != nil {
		return nil, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), errors.Join(perr, err))
	}
	return rep, nil
}

func (m *meter) tcp(streams int) (float64, error) {
	rep, err := m.iperf("-P", strconv.Itoa(streams))
	if err != nil {
		return 0, err
	}
	return rep.End.SumReceived.BitsPerSecond / 1e9, nil
}

func (m *meter) udp() (sent, delivered, lostPct float64, err error) {
	rep, err := m.iperf("-u", "-b", "0", "-l", strconv.Itoa(m.o.Payload))
	if err != nil {
		return 0, 0, 0, err
	}
	return rep.udp()
}

// iperfReport is the part of iperf3 -J's report we read.
type iperfReport struct {
	Error string `json:"error"`
	End   struct {
		SumSent     iperfSum `json:"sum_sent"`
		SumReceived iperfSum `json:"sum_received"`
	} `json:"end"`
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	Bytes         float64 `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       float64 `json:"packets"`
	LostPackets   float64 `json:"lost_packets"`
	LostPercent   float64 `json:"lost_percent"`
}

func parseIperf(data []byte) (*iperfReport, error) {
	var r iperfReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading iperf3's report: %w", err)
	}
	return &r, nil
}

// udp reads the small-packet figures: packets sent per second, packets that
// arrived per second, and the share lost.
func (r *iperfReport) udp() (sent, delivered, lostPct float64, err error) {
	s, rcv := r.End.SumSent, r.End.SumReceived
	if s.Seconds <= 0 || rcv.Seconds <= 0 || s.Packets <= 0 || rcv.Packets < rcv.LostPackets {
		return 0, 0, 0, fmt.Errorf("iperf3 UDP report without packet counts (%+v, %+v)", s, rcv)
	}
	sent, delivered = s.Packets/s.Seconds, (rcv.Packets-rcv.LostPackets)/rcv.Seconds
	if math.IsInf(sent, 0) || math.IsInf(delivered, 0) {
		return 0, 0, 0, fmt.Errorf("iperf3 UDP report with impossible figures (%+v, %+v)", s, rcv)
	}
	return sent, delivered, rcv.LostPercent, nil
}
