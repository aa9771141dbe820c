package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultStateInterval is how often `keepstate run` writes the table to --state
// while it runs (--state-interval): a SIGKILL, a crash or a power loss loses at most
// the connections opened in the last interval plus the time a write takes. Writing
// costs about 0.1-0.3 s of one core and 118 bytes per connection, in short hold of
// each shard's lock (docs/benchmarks.md).
const DefaultStateInterval = 5 * time.Second

// checkpointDuty bounds the share of time spent writing snapshots: after a write
// that took T, the next one waits at least checkpointDuty*T, so a table too large
// for the interval is written less often rather than all the time.
const checkpointDuty = 10

// SnapshotInfo describes the snapshots written while the daemon runs.
type SnapshotInfo struct {
	Path            string    `json:"path"`
	IntervalSeconds float64   `json:"interval_s"`           // 0: written only at stop
	Last            time.Time `json:"last,omitzero"`        // when the last one was written
	LastSeconds     float64   `json:"last_s,omitempty"`     // how long writing it took
	LastConnections int       `json:"last_connections"`     // how many connections it holds
	LastBytes       int64     `json:"last_bytes,omitempty"` // its size
	Writes          uint64    `json:"writes"`               // written since start (the stop's included)
	Error           string    `json:"error,omitempty"`      // why the last attempt failed, if it did
}

// checkpoints is the record of the snapshots written while running.
type checkpoints struct {
	mu   sync.Mutex
	info SnapshotInfo
}

func (c *checkpoints) get() SnapshotInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// checkpointLoop writes the table to --state every StateInterval until ctx ends.
func (d *Daemon) checkpointLoop(ctx context.Context) {
	wait := d.o.StateInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		took, _ := d.checkpoint()
		wait = max(d.o.StateInterval, checkpointDuty*took)
	}
}

// checkpoint writes the table to --state now and records how it went. A failure
// is written to error.log once, until writing works again.
func (d *Daemon) checkpoint() (time.Duration, error) {
	now := d.now()
	start := time.Now()
	n, size, err := saveState(d.o.StatePath, d.eng.Table(), now)
	took := time.Since(start)
	c := &d.snaps
	c.mu.Lock()
	failing := c.info.Error != ""
	if err != nil {
		c.info.Error = err.Error()
	} else {
		c.info.Error = ""
		c.info.Last, c.info.LastSeconds, c.info.LastConnections, c.info.LastBytes = now, took.Seconds(), n, size
		c.info.Writes++
	}
	c.mu.Unlock()
	switch {
	case err != nil && !failing:
		d.fail("writing connections to %s: %v (a crash now would lose the connections opened since the last snapshot; retrying)", d.o.StatePath, err)
	case err == nil && failing:
		d.say("writing connections to %s works again (%d connection(s))", d.o.StatePath, n)
	}
	return took, err
}

// recoverAfterUncleanStart says what an unclean start means for the connections
// the snapshot may have missed and, with RecoverAfterCrashSeconds, opens the
// window in which strict mode picks them up mid-stream.
func (d *Daemon) recoverAfterUncleanStart() {
	if d.state == nil || !d.state.unclean {
		return
	}
	now := d.now()
	previous := d.state.previous
	var since string
	if !d.savedAt.IsZero() {
		since = fmt.Sprintf("the snapshot restored was written %s before this start", now.Sub(d.savedAt).Round(time.Millisecond))
	} else {
		since = "there was no snapshot to restore"
	}
	d.mu.Lock()
	s := &d.cur.bundle.Config.Settings
	d.mu.Unlock()
	switch {
	case !s.Require3WayHandshake:
		d.warn("unclean_start", "unclean start: the previous keepstate (%s) did not stop (a crash, SIGKILL or power loss); %s; connections opened after it are picked up mid-stream (Require3WayHandshake=0)", previous, since)
	case s.RecoverAfterCrash > 0:
		until := now.Add(s.RecoverAfterCrash)
		d.recoverUntil = until
		d.eng.RecoverUntil(until.UnixNano())
		d.warn("unclean_start", "unclean start: the previous keepstate (%s) did not stop (a crash, SIGKILL or power loss); %s; until %s (RecoverAfterCrashSeconds=%d) mid-stream TCP packets pick up the connections the rules permit, each logged here",
			previous, since, until.Format(time.TimeOnly), int64(s.RecoverAfterCrash/time.Second))
	default:
		d.warn("unclean_start", "unclean start: the previous keepstate (%s) did not stop (a crash, SIGKILL or power loss); %s; connections opened after it are dropped as handshake_not_completed (RecoverAfterCrashSeconds=0)", previous, since)
	}
}
