package insight

import (
	"sync"
	"sync/atomic"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
)

// Queue sizes of a Feed: what a burst may hold before events are counted as lost
// instead of waited for. A Drop is about 170 bytes, an End about 150: about 2 MiB
// at most.
const (
	feedDrops = 8192
	feedEnds  = 4096
)

// Feed runs a Monitor beside a live data plane: the packet paths hand it drops and
// connection ends without ever waiting (a full queue counts the event as lost),
// and one goroutine of its own feeds the monitor and ticks it. It is safe for
// concurrent use.
type Feed struct {
	m       *Monitor
	drops   chan Drop
	ends    chan End
	lost    atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
}

// NewFeed returns a feed of m; Start sets it going.
func NewFeed(m *Monitor) *Feed {
	return &Feed{m: m, drops: make(chan Drop, feedDrops), ends: make(chan End, feedEnds),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Monitor returns the monitor the feed runs.
func (f *Feed) Monitor() *Monitor { return f.m }

// Dropped queues a dropped packet (the dataplane.Reporter's watcher hook).
func (f *Feed) Dropped(t int64, p *packet.Parsed, d *firewall.Decision) {
	select {
	case f.drops <- DropOf(t, p, d):
	default:
		f.lost.Add(1)
	}
}

// ConnEnded queues a connection that left the table.
func (f *Feed) ConnEnded(e firewall.ConnEnd) {
	select {
	case f.ends <- EndOf(e):
	default:
		f.lost.Add(1)
	}
}

// Start runs the feed until Close: queued events go to the monitor, and every
// interval it ticks with the time and the table state state returns.
func (f *Feed) Start(every time.Duration, state func() (now int64, t Table)) {
	f.started.Store(true)
	go func() {
		defer close(f.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case d := <-f.drops:
				f.m.Drop(&d)
			case e := <-f.ends:
				f.m.End(&e)
			case <-tick.C:
				f.m.lostEvents(f.lost.Swap(0))
				now, t := state()
				f.m.Tick(now, t)
			}
		}
	}()
}

// Close stops the feed's goroutine and waits for it; events still queued are
// left. Safe to call more than once, and without Start.
func (f *Feed) Close() {
	f.once.Do(func() {
		close(f.stop)
		if f.started.Load() {
			<-f.done
		}
	})
}
