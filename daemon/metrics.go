package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"keepstate/insight"
	"keepstate/reason"
)

// metricsServer serves /metrics on a loopback address.
type metricsServer struct {
	d   *Daemon
	ln  net.Listener
	srv *http.Server
}

// listenMetrics listens on addr, which must be a loopback address: the metrics
// have no authentication and say a lot about the network.
func listenMetrics(d *Daemon, addr string) (*metricsServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("metrics address %q: not a loopback address (127.0.0.1, [::1] or localhost)", addr)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{d: d},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return &metricsServer{d: d, ln: ln, srv: srv}, nil
}

// start serves the metrics; scrapes before it wait in the listen queue.
func (m *metricsServer) start() {
	go func() {
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.d.fail("metrics server: %v", err)
		}
	}()
}

func (m *metricsServer) url() string { return "http://" + m.ln.Addr().String() + "/metrics" }

func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
}

// The metrics. Every value is read from the counters the engine, the table and
// the plane keep anyway, when Prometheus scrapes: nothing is updated per packet.
var (
	descPackets = prometheus.NewDesc("keepstate_packets_total",
		"Packets decided by the engine.", nil, nil)
	descAccepted = prometheus.NewDesc("keepstate_packets_accepted_total",
		"Packets accepted.", nil, nil)
	descDrops = prometheus.NewDesc("keepstate_packets_dropped_total",
		"Packets dropped or rejected, by reason (the ids of keepstate's reason list).", []string{"reason"}, nil)
	descConns = prometheus.NewDesc("keepstate_conntrack_connections",
		"Connections in the table.", nil, nil)
	descTombstones = prometheus.NewDesc("keepstate_conntrack_tombstones",
		"Recently ended connections remembered to explain late packets.", nil, nil)
	descCreated = prometheus.NewDesc("keepstate_conntrack_created_total",
		"Connections created.", nil, nil)
	descEnded = prometheus.NewDesc("keepstate_conntrack_ended_total",
		"Connections that left the table, by cause.", []string{"cause"}, nil)
	descEvictions = prometheus.NewDesc("keepstate_conntrack_evictions_total",
		"Connections evicted to make room in a full table.", nil, nil)
	descRSTInexact = prometheus.NewDesc("keepstate_conntrack_rst_inexact_total",
		"RSTs inside the window but not at the sender's exact next sequence number, passed without closing the connection (RFC 5961).", nil, nil)
	descQueuePackets = prometheus.NewDesc("keepstate_queue_packets_total",
		"Packets read from the kernel's queues.", nil, nil)
	descQueueDrops = prometheus.NewDesc("keepstate_queue_drops_total",
		"Packets lost between the kernel and keepstate, by where: queue_full (kernel queue_dropped), "+
			"user (kernel user_dropped), socket_overflow (ENOBUFS).", []string{"where"}, nil)
	descNetlinkErrors = prometheus.NewDesc("keepstate_netlink_errors_total",
		"Failed netlink calls, kernel error answers and malformed messages.", nil, nil)
	descQueueWaiting = prometheus.NewDesc("keepstate_queue_waiting_packets",
		"Packets waiting in the kernel's queues for a verdict.", nil, nil)
	descLatency = prometheus.NewDesc("keepstate_verdict_latency_seconds",
		"Time packets were held for their verdict, from the batch's arrival to its verdicts. "+
			"Buckets are exact; the sum is estimated from bucket midpoints.", nil, nil)
	descConfigGen = prometheus.NewDesc("keepstate_config_generation",
		"Configuration changes in force since start (1 at start; rollbacks count).", nil, nil)
	descPending = prometheus.NewDesc("keepstate_config_pending_confirmation",
		"1 while a configuration change awaits confirmation.", nil, nil)
	descLogSuppressed = prometheus.NewDesc("keepstate_log_suppressed_lines_total",
		"Drop-log lines refused by the rate limiter.", nil, nil)
	descInsightsOpen = prometheus.NewDesc("keepstate_insights_open",
		"Insights open now, by kind (keepstate insights lists them).", []string{"kind"}, nil)
	descInsightEvents = prometheus.NewDesc("keepstate_insight_events_total",
		"Drops and connection ends the insight detectors looked at.", nil, nil)
	descInsightLost = prometheus.NewDesc("keepstate_insight_events_lost_total",
		"Drops and connection ends the insight detectors' queue had no room for.", nil, nil)
)

// collector turns the daemon's counters into metrics at scrape time.
type collector struct{ d *Daemon }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descAccepted, descDrops, descConns, descTombstones,
		descCreated, descEnded, descEvictions, descRSTInexact, descQueuePackets, descQueueDrops, descNetlinkErrors,
		descQueueWaiting, descLatency, descConfigGen, descPending, descLogSuppressed,
		descInsightsOpen, descInsightEvents, descInsightLost} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	s := c.d.Stats()
	counter(descPackets, s.Packets)
	counter(descAccepted, s.Accepted)
	for _, r := range reason.All() {
		// From the same snapshot as the packet totals, so that one scrape adds up.
		counter(descDrops, s.DropsByReason[r.String()], r.String())
	}
	ct := &s.Conntrack
	gauge(descConns, float64(ct.Connections))
	gauge(descTombstones, float64(ct.Tombstones))
	counter(descCreated, ct.Created)
	counter(descEvictions, ct.Evicted)
	counter(descEnded, ct.Expired, "expired")
	counter(descEnded, ct.Closed, "closed")
	counter(descEnded, ct.Evicted, "evicted")
	counter(descEnded, ct.Flushed, "flushed")
	counter(descRSTInexact, ct.RSTInexact)

	p := &s.Plane
	counter(descQueuePackets, p.Packets)
	counter(descQueueDrops, p.QueueDropped, "queue_full")
	counter(descQueueDrops, p.UserDropped, "user")
	counter(descQueueDrops, p.SocketOverflows, "socket_overflow")
	counter(descNetlinkErrors, p.NetlinkErrors)
	gauge(descQueueWaiting, float64(p.Waiting))
	if h := p.Latency; len(h.Bounds) > 0 && len(h.Counts) == len(h.Bounds)+1 {
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		var sum float64
		lower := 0.0
		for i, b := range h.Bounds {
			upper := b.Seconds()
			cum += h.Counts[i]
			buckets[upper] = cum
			sum += float64(h.Counts[i]) * (lower + upper) / 2
			lower = upper
		}
		last := h.Counts[len(h.Bounds)]
		cum += last
		sum += float64(last) * 2 * lower // the open bucket: beyond the last bound
		ch <- prometheus.MustNewConstHistogram(descLatency, cum, sum, buckets)
	}

	c.d.mu.Lock()
	gen, pend := c.d.gen, c.d.pending != nil
	c.d.mu.Unlock()
	gauge(descConfigGen, float64(gen))
	if pend {
		gauge(descPending, 1)
	} else {
		gauge(descPending, 0)
	}
	counter(descLogSuppressed, s.Log.Suppressed)

	mon := c.d.insights.Monitor()
	open := mon.OpenByKind()
	for _, k := range insight.Kinds() {
		ch <- prometheus.MustNewConstMetric(descInsightsOpen, prometheus.GaugeValue, float64(open[k]), string(k))
	}
	is := mon.Stats()
	counter(descInsightEvents, is.Events)
	counter(descInsightLost, is.Lost)
}
