package daemon

import (
	"context"
	"time"

	"keepstate/dataplane"
	"keepstate/firewall"
)

// DataPlane feeds packets to the engine and verdicts back: the NFQUEUE plane in
// production (with or without its kernel fast path), a fake driven by synthetic
// packets in tests. The daemon never decides anything itself; it only starts,
// watches and stops the plane. The interface and its statistics are the daemon's,
// so that the admin API, the metrics and the web page read the same figures
// whichever plane runs.
type DataPlane interface {
	// Start installs whatever hooks the plane needs and starts deciding; it
	// returns once packets flow, or with an error after undoing what it did.
	Start(ctx context.Context) error
	// Close removes the hooks and stops; safe to call more than once.
	Close() error
	// Detach stops but leaves the hooks in place, for a restart: the next plane
	// takes them over, and until then the fail mode decides (closed: forwarded
	// packets are dropped and TCP retransmits them). Close after Detach does
	// nothing.
	Detach() error
	// Wait blocks until the plane stopped (Close, the Start context ended, or a
	// failure) and returns the failure, if any.
	Wait() error
	// Backend says how packets reach the plane, e.g. "iptables (xt NFQUEUE)".
	Backend() string
	// Stats are the plane's counters.
	Stats() PlaneStats
}

// PlaneStats is what the data plane saw and did. Packets counts the packets the
// plane read and had the engine decide (Accepted + Dropped + Rejected); with a
// fast path, the packets it accepted in the kernel are in FastPath instead, never
// in both.
type PlaneStats struct {
	Backend  string `json:"backend"`
	Packets  uint64 `json:"packets"`
	GSO      uint64 `json:"gso"` // of Packets: GSO/GRO super-packets, decided whole
	Accepted uint64 `json:"accepted"`
	Dropped  uint64 `json:"dropped"`
	Rejected uint64 `json:"rejected"`

	Answers        uint64 `json:"answers"`         // RSTs and ICMP errors sent for Rejected packets
	AnswersLimited uint64 `json:"answers_limited"` // not sent: over the answer rate limit
	AnswerErrors   uint64 `json:"answer_errors"`

	Batches         uint64 `json:"batches"`
	VerdictMessages uint64 `json:"verdict_messages"`
	NetlinkErrors   uint64 `json:"netlink_errors"`

	// Packets lost before a verdict: the kernel's queue was full (QueueDropped),
	// could not send to us (UserDropped), or our socket overflowed.
	QueueDropped    uint64 `json:"queue_dropped"`
	UserDropped     uint64 `json:"user_dropped"`
	SocketOverflows uint64 `json:"socket_overflows"`
	Waiting         uint64 `json:"waiting"` // packets waiting for a verdict now

	Queues  []QueueStats     `json:"queues,omitempty"`
	Latency LatencyHistogram `json:"verdict_latency"`
	// KernelStatsError says why the kernel's queue counters could not be read.
	KernelStatsError string `json:"kernel_stats_error,omitempty"`

	// FastPath is the kernel fast path's part; nil when it is off.
	FastPath *FastPathStats `json:"fast_path,omitempty"`
}

// QueueStats are one queue's packets and losses.
type QueueStats struct {
	Queue        uint16 `json:"queue"`
	Packets      uint64 `json:"packets"`
	Dropped      uint64 `json:"dropped"`
	QueueDropped uint64 `json:"queue_dropped"`
	UserDropped  uint64 `json:"user_dropped"`
	Waiting      uint64 `json:"waiting"`
}

// LatencyHistogram counts packets by how long the plane held them for their
// verdict. Bounds[i] is the exclusive upper bound of Counts[i]; the last count,
// one past Bounds, has no upper bound.
type LatencyHistogram struct {
	Bounds []time.Duration `json:"bounds_ns"`
	Counts []uint64        `json:"counts"`
}

// FastPathStats are the kernel fast path's counters: what it accepted in the
// kernel for connections the engine handed over, and the hand-overs themselves.
type FastPathStats struct {
	Mode       string   `json:"mode"`       // e.g. "tc", with the interfaces in Interfaces
	Interfaces []string `json:"interfaces"` // where the program is attached
	Offloaded  int      `json:"offloaded"`  // connections in the kernel's map now
	Packets    uint64   `json:"packets"`    // accepted in the kernel
	Bytes      uint64   `json:"bytes"`      // IP bytes of those packets
	// Passed counts packets of offloaded connections the program handed to the
	// engine (flags, window, idle time), which took the connection back.
	Passed    uint64 `json:"passed"`
	HandedOut uint64 `json:"handed_over"` // connections put into the map
	TakenBack uint64 `json:"taken_back"`  // connections taken out of it
	MapFull   uint64 `json:"map_full"`    // hand-overs refused: the map was full
	Errors    uint64 `json:"errors"`      // map operations that failed otherwise
}

// PlaneFactory builds the data plane for an engine and the reporter that logs its
// decisions. It is called once, after the engine exists and the table was
// restored.
type PlaneFactory func(eng *firewall.Engine, rep *dataplane.Reporter) (DataPlane, error)

// Quantile returns the upper bound of the bucket holding quantile q (0 < q <= 1),
// or 0 when nothing was counted. The open last bucket reports twice the last bound.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 || len(h.Bounds) == 0 {
		return 0
	}
	want := max(uint64(q*float64(total)), 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= want {
			if i < len(h.Bounds) {
				return h.Bounds[i]
			}
			break
		}
	}
	return 2 * h.Bounds[len(h.Bounds)-1]
}
