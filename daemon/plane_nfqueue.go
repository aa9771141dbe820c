package daemon

import (
	"context"
	"errors"

	"keepstate/dataplane/nfqueue"
)

// QueuePlane is the NFQUEUE data plane as a DataPlane, with its kernel fast
// path when Fast is set: its own statistics turned into the daemon's.
type QueuePlane struct {
	*nfqueue.Plane
	Fast FastPath
}

// FastPath is a kernel fast path beside the queues: attached once the queues'
// hooks are in, detached (every connection it held given back to the engine's
// table) before they go.
type FastPath interface {
	Attach() error
	Close() error
	Stats() FastPathStats
}

// Start implements DataPlane.
func (q QueuePlane) Start(ctx context.Context) error {
	if err := q.Plane.Start(ctx); err != nil {
		return err
	}
	if q.Fast != nil {
		if err := q.Fast.Attach(); err != nil {
			return errors.Join(err, q.Plane.Close())
		}
	}
	return nil
}

// Close implements DataPlane.
func (q QueuePlane) Close() error {
	var err error
	if q.Fast != nil {
		err = q.Fast.Close()
	}
	return errors.Join(err, q.Plane.Close())
}

// Detach implements DataPlane: the fast path goes (its program is this
// process's), the queues' hooks stay.
func (q QueuePlane) Detach() error {
	var err error
	if q.Fast != nil {
		err = q.Fast.Close()
	}
	return errors.Join(err, q.Plane.Detach())
}

// Stats implements DataPlane.
func (q QueuePlane) Stats() PlaneStats {
	s := QueueStatsOf(q.Plane.Stats())
	if q.Fast != nil {
		f := q.Fast.Stats()
		s.FastPath = &f
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
