package conntrack

import (
	"sync"
	"sync/atomic"
	"time"
)

// rateWindow is the per-source rate limit's window.
const rateWindow = int64(time.Minute)

// srcState is one source address's counters.
type srcState struct {
	conns     int32 // connections open now
	rateCount int32 // connections opened in the current window
	rateStart int64 // Unix ns when the current window opened (valid if rateCount > 0)
}

// idle reports whether the state carries nothing worth keeping at now.
func (st *srcState) idle(now int64) bool {
	return st.conns <= 0 && (st.rateCount == 0 || now-st.rateStart >= rateWindow)
}

const srcParts = 16

// srcKey is what a per-source count counts against: a source address, and the rule
// (Meta.Rule) for a rule's own limit (MaxPerSource), 0 for the table's limits.
type srcKey struct {
	src  [16]byte
	rule uint32
}

// srcLimiter holds per-source counters in maps that only contain sources with open
// connections or a running rate window, so its memory follows the number of active
// sources, not the table size. It is split by address hash to spread lock traffic;
// its locks are only ever taken inside (or without) a shard lock, never the reverse.
type srcLimiter struct {
	parts [srcParts]struct {
		mu sync.Mutex
		m  map[srcKey]srcState
	}
	sweeps pacer // at most one sweep per sweepEvery
}

// pacer lets a job run at most once per period of table time. Of many goroutines
// that find it due, one claims the run; if time goes back, it runs at once and
// counts from there.
type pacer struct{ last atomic.Int64 } // table time of the last run

// due reports whether the job should run at now, every ns after the last run,
// and claims the run.
func (p *pacer) due(now, every int64) bool {
	last := p.last.Load()
	if now-last < every && now >= last {
		return false
	}
	return p.last.CompareAndSwap(last, now)
}

// sweepEvery is how much table time passes between two sweeps. Sources only turn
// idle by time (a rate window running out) or when a connection ends (and release
// removes them then), so a sweep a second is plenty; Expire, which sweeps, can be
// called for every new connection when the table is full.
const sweepEvery = int64(time.Second)

func (l *srcLimiter) part(seed *hashSeed, k srcKey) int {
	r := [2]byte{byte(k.rule), byte(k.rule >> 8)}
	return int(endpointHash(seed, k.src, r) >> 60 % srcParts)
}

// Limit names the per-source limit that refused a connection.
type Limit uint8

const (
	NoLimit         Limit = iota
	LimitConcurrent       // Config.PerSourceConns: connections open at once
	LimitPerMinute        // Config.PerSourceRate: new connections in a minute
	LimitRule             // Meta.MaxPerSource: the admitting rule's own limit
)

// acquire counts a new connection against k, or reports the limit that refuses it:
// at most conns at once (over is the Limit that says so) and rate a minute (0:
// unlimited). A refused attempt does not count against the rate.
func (l *srcLimiter) acquire(seed *hashSeed, k srcKey, now int64, conns, rate int32, over Limit) Limit {
	p := &l.parts[l.part(seed, k)]
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.m[k]
	if conns > 0 && st.conns >= conns {
		return over
	}
	if st.rateCount > 0 && now-st.rateStart >= rateWindow {
		st.rateCount = 0
	}
	if rate > 0 && st.rateCount >= rate {
		return LimitPerMinute
	}
	if st.rateCount == 0 {
		st.rateStart = now
	}
	st.rateCount++
	st.conns++
	if p.m == nil {
		p.m = make(map[srcKey]srcState)
	}
	p.m[k] = st
	return NoLimit
}

// count counts a connection against k with no limit applied: a restored one, or
// one whose rule has just been given a limit.
func (l *srcLimiter) count(seed *hashSeed, k srcKey) {
	p := &l.parts[l.part(seed, k)]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[srcKey]srcState)
	}
	st := p.m[k]
	st.conns++
	p.m[k] = st
}

// release uncounts a connection counted against k that ended.
func (l *srcLimiter) release(seed *hashSeed, k srcKey, now int64) {
	p := &l.parts[l.part(seed, k)]
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.m[k]
	if !ok {
		return
	}
	st.conns--
	if st.idle(now) {
		delete(p.m, k)
		return
	}
	p.m[k] = st
}

// sweep drops sources whose last connection ended and whose rate window has run
// out. It visits at most a bounded number per part per call (map iteration starts
// at a random point), so its cost does not grow with the number of sources.
func (l *srcLimiter) sweep(now int64) {
	if !l.sweeps.due(now, sweepEvery) {
		return
	}
	for i := range l.parts {
		p := &l.parts[i]
		p.mu.Lock()
		n := 0
		for a, st := range p.m {
			if st.idle(now) {
				delete(p.m, a)
			}
			if n++; n >= 256 {
				break
			}
		}
		p.mu.Unlock()
	}
}

// sources returns how many sources are tracked (for tests and Stats).
func (l *srcLimiter) sources() int {
	n := 0
	for i := range l.parts {
		l.parts[i].mu.Lock()
		n += len(l.parts[i].m)
		l.parts[i].mu.Unlock()
	}
	return n
}
