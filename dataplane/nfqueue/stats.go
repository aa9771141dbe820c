package nfqueue

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"time"
)

// Counters count what happened to packets and to the netlink exchange. Packets
// counts packets read from the kernel; Accepted + Dropped + Rejected = Packets.
type Counters struct {
	Packets  uint64 `json:"packets"`
	GSO      uint64 `json:"gso"` // of Packets: GSO/GRO super-packets, decided whole
	Accepted uint64 `json:"accepted"`
	Dropped  uint64 `json:"dropped"`  // silently: Drop decisions and packets that could not be read
	Rejected uint64 `json:"rejected"` // Deny: dropped and answered

	Answers        uint64 `json:"answers"`         // RSTs and ICMP errors sent for Rejected packets
	AnswersLimited uint64 `json:"answers_limited"` // not sent: over the answer rate limit
	AnswerErrors   uint64 `json:"answer_errors"`   // could not be sent

	Batches         uint64 `json:"batches"`          // receive calls that returned packets
	VerdictMessages uint64 `json:"verdict_messages"` // verdict messages sent: Packets/VerdictMessages is the batching gain

	// NetlinkErrors counts failed receive and send calls, error answers from the
	// kernel and malformed or cut messages. SocketOverflows counts ENOBUFS: the
	// socket's receive buffer was full and the kernel discarded packet messages
	// (dropping the packets, or accepting them with FailOpen).
	NetlinkErrors   uint64 `json:"netlink_errors"`
	SocketOverflows uint64 `json:"socket_overflows"`

	// The kernel's own counters (/proc/net/netfilter/nfnetlink_queue): packets
	// lost because the queue was full (QueueDropped) or could not be sent to us
	// (UserDropped), and packets waiting for a verdict now. With FailOpen the
	// kernel lets a full queue's packets pass instead, and counts nothing:
	// Waiting at the queue length is then the only sign.
	QueueDropped uint64 `json:"queue_dropped"`
	UserDropped  uint64 `json:"user_dropped"`
	Waiting      uint64 `json:"waiting"`
}

func (c *Counters) add(o *Counters) {
	c.Packets += o.Packets
	c.GSO += o.GSO
	c.Accepted += o.Accepted
	c.Dropped += o.Dropped
	c.Rejected += o.Rejected
	c.Answers += o.Answers
	c.AnswersLimited += o.AnswersLimited
	c.AnswerErrors += o.AnswerErrors
	c.Batches += o.Batches
	c.VerdictMessages += o.VerdictMessages
	c.NetlinkErrors += o.NetlinkErrors
	c.SocketOverflows += o.SocketOverflows
	c.QueueDropped += o.QueueDropped
	c.UserDropped += o.UserDropped
	c.Waiting += o.Waiting
}

// QueueStats are one queue's counters.
type QueueStats struct {
	Queue uint16 `json:"queue"`
	Counters
}

// Stats is a snapshot of the data plane.
type Stats struct {
	Backend string `json:"backend"`
	Counters
	Queues  []QueueStats     `json:"queues"`
	Latency LatencyHistogram `json:"verdict_latency"`
	// KernelStatsError says why the kernel's counters could not be read; empty
	// when they were.
	KernelStatsError string `json:"kernel_stats_error,omitempty"`
}

// Verdict latency is measured from the moment a batch of packets came back from
// the kernel to the moment its verdicts are handed back: the time keepstate held
// them (every packet of a batch is counted with the batch's time).
// Bucket i counts packets held less than latencyBound(i); the last bucket counts
// the rest.
const latencyBuckets = 22

func latencyBound(i int) time.Duration { return time.Microsecond << i } // 1µs .. ~1s

// LatencyHistogram counts packets by verdict latency.
type LatencyHistogram struct {
	// Bounds[i] is the exclusive upper bound of Counts[i]; the last count, one
	// past Bounds, has no upper bound.
	Bounds []time.Duration `json:"bounds_ns"`
	Counts []uint64        `json:"counts"`
}

// Quantile returns the upper bound of the bucket holding quantile q (0 < q <= 1),
// or 0 when nothing was counted. The open last bucket reports twice the last bound.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	if want == 0 {
		want = 1
	}
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

// queueCounters are one worker's live counters. Only its worker writes them;
// Stats reads them at any time.
type queueCounters struct {
	packets, gso, accepted, dropped, rejected atomic.Uint64
	answers, answersLimited, answerErrors     atomic.Uint64
	batches, verdictMessages                  atomic.Uint64
	netlinkErrors, socketOverflows            atomic.Uint64
	latency                                   [latencyBuckets + 1]atomic.Uint64
}

func (q *queueCounters) snapshot() Counters {
	return Counters{
		Packets: q.packets.Load(), GSO: q.gso.Load(),
		Accepted: q.accepted.Load(), Dropped: q.dropped.Load(), Rejected: q.rejected.Load(),
		Answers: q.answers.Load(), AnswersLimited: q.answersLimited.Load(), AnswerErrors: q.answerErrors.Load(),
		Batches: q.batches.Load(), VerdictMessages: q.verdictMessages.Load(),
		NetlinkErrors: q.netlinkErrors.Load(), SocketOverflows: q.socketOverflows.Load(),
	}
}

// observeLatency counts n packets held for d.
func (q *queueCounters) observeLatency(d time.Duration, n int) {
	i := 0
	for i < latencyBuckets && d >= latencyBound(i) {
		i++
	}
	q.latency[i].Add(uint64(n))
}

func newLatencyHistogram() LatencyHistogram {
	h := LatencyHistogram{Bounds: make([]time.Duration, latencyBuckets), Counts: make([]uint64, latencyBuckets+1)}
	for i := range h.Bounds {
		h.Bounds[i] = latencyBound(i)
	}
	return h
}

// kernelQueue is one line of /proc/net/netfilter/nfnetlink_queue.
type kernelQueue struct {
	Queue        uint16
	PortID       uint32 // netlink port of the bound socket
	Waiting      uint64 // queue_total
	QueueDropped uint64
	UserDropped  uint64
}

// parseKernelQueues parses /proc/net/netfilter/nfnetlink_queue: per line the queue
// number, peer port id, queue total, copy mode, copy range, queue dropped, user
// dropped, last packet id and 1 (net/netfilter/nfnetlink_queue.c, seq_show).
// Lines that do not parse are skipped.
func parseKernelQueues(data []byte) []kernelQueue {
	var out []kernelQueue
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		f := bytes.Fields(line)
		if len(f) < 7 {
			continue
		}
		var v [7]uint64
		ok := true
		for i := range v {
			n, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				ok = false
				break
			}
			v[i] = n
		}
		if !ok || v[0] > 0xffff || v[1] > 0xffffffff {
			continue
		}
		out = append(out, kernelQueue{Queue: uint16(v[0]), PortID: uint32(v[1]), Waiting: v[2], QueueDropped: v[5], UserDropped: v[6]})
	}
	return out
}
