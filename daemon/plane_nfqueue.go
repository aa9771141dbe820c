package daemon

import (
	"keepstate/dataplane/nfqueue"
)

// QueuePlane is the NFQUEUE data plane as a DataPlane: its own statistics turned
// into the daemon's. FastPath, when set, adds the kernel fast path's counters.
type QueuePlane struct {
	*nfqueue.Plane
	FastPath func() *FastPathStats
}

// Stats implements DataPlane.
func (q QueuePlane) Stats() PlaneStats {
	s := QueueStatsOf(q.Plane.Stats())
	if q.FastPath != nil {
		s.FastPath = q.FastPath()
	}
	return s
}

// QueueStatsOf converts the NFQUEUE plane's statistics.
func QueueStatsOf(n nfqueue.Stats) PlaneStats {
	c := &n.Counters
	s := PlaneStats{
		Backend: n.Backend, Packets: c.Packets, GSO: c.GSO, Accepted: c.Accepted, Dropped: c.Dropped, Rejected: c.Rejected,
		Answers: c.Answers, AnswersLimited: c.AnswersLimited, AnswerErrors: c.AnswerErrors,
		Batches: c.Batches, VerdictMessages: c.VerdictMessages, NetlinkErrors: c.NetlinkErrors,
		QueueDropped: c.QueueDropped, UserDropped: c.UserDropped, SocketOverflows: c.SocketOverflows, Waiting: c.Waiting,
		Latency:          LatencyHistogram{Bounds: n.Latency.Bounds, Counts: n.Latency.Counts},
		KernelStatsError: n.KernelStatsError,
	}
	for _, q := range n.Queues {
		s.Queues = append(s.Queues, QueueStats{Queue: q.Queue, Packets: q.Packets, Dropped: q.Dropped + q.Rejected,
			QueueDropped: q.QueueDropped, UserDropped: q.UserDropped, Waiting: q.Waiting})
	}
	return s
}
