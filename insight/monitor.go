package insight

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"keepstate/config"
	"keepstate/conntrack"
	"keepstate/policy"
)

// Options configure a Monitor.
type Options struct {
	// ExplainConfig is the configuration the evidence's explain commands name
	// with --config; empty: none (the built-in configuration).
	ExplainConfig string
	// BytesPerConn returns the memory one tracked connection costs and where the
	// figure comes from; it is called once, when a memory cost is first quoted.
	// nil: insights quote no memory figures.
	BytesPerConn func() (bytes float64, source string)
	// OnChange is called for every insight that opens, closes or changes
	// severity, after the monitor's lock is released, in order.
	OnChange func(Change)
}

// Change is one step in an insight's life, as `keepstate insights --follow` and
// the warning log show it.
type Change struct {
	Seq     uint64  `json:"seq"`
	Event   string  `json:"event"` // "opened", "updated" or "closed"
	Insight Insight `json:"insight"`
}

// Bounds of what a Monitor holds, whatever the traffic (see doc.go).
const (
	maxGroups     = 256  // candidate findings per detector
	maxHistory    = 64   // closed insights kept for listing
	maxChanges    = 1024 // changes kept for --follow
	updateEvery   = 10 * time.Second
	maxIDSuffixes = 4096
)

// Monitor runs the detectors. It never reads the clock: every event carries its
// time and Tick says what time it is, so that replay runs on capture time. It is
// safe for concurrent use, but the daemon feeds it from one goroutine (Feed) so
// that no packet path ever waits for it.
type Monitor struct {
	mu   sync.Mutex
	o    Options
	env  env
	dets []detector

	live    []*record // open insights, in the order they opened
	history []*record // closed ones, oldest first, at most maxHistory
	idUses  map[string]int

	clock   int64 // the latest time any event or tick brought
	seq     uint64
	changes []Change // the last maxChanges, oldest first
	notify  []Change // to hand to OnChange once unlocked

	stats Stats
}

// New returns a monitor with every detector.
func New(o Options) *Monitor {
	m := &Monitor{o: o, idUses: map[string]int{}}
	m.env.explainConfig = o.ExplainConfig
	m.dets = []detector{
		newAsymmetric(), newKeepAlive(), newPressure(), newLimits(), newSYNFlood(), newDesync(), newShadowed(),
	}
	return m
}

// env is what the detectors and the descriptions read: the configuration in
// force, the table's last state and the memory figure.
type env struct {
	cfg           *config.Config
	rules         *policy.Ruleset
	gen           uint64 // configuration generation, +1 per SetConfig
	table         Table
	prevTable     Table
	tableAt       int64 // time of table
	prevTableAt   int64
	explainConfig string
	bytesPerConn  float64
	bytesSource   string
	bytesAsked    bool
	bytesFn       func() (float64, string)
}

// memory returns the bytes per connection, asking for the figure the first time.
func (e *env) memory() (float64, string) {
	if !e.bytesAsked && e.bytesFn != nil {
		e.bytesAsked = true
		e.bytesPerConn, e.bytesSource = e.bytesFn()
	}
	return e.bytesPerConn, e.bytesSource
}

// detector is one kind's logic. Its methods run with the monitor's lock held.
type detector interface {
	kind() Kind
	drop(m *Monitor, d *Drop)
	end(m *Monitor, e *End)
	tick(m *Monitor, now int64)
	configured(m *Monitor, now int64)
	// forget drops the state of a group whose insight closed.
	forget(key string)
}

// base gives detectors no-op methods for the events they ignore.
type base struct{}

func (base) drop(*Monitor, *Drop)       {}
func (base) end(*Monitor, *End)         {}
func (base) tick(*Monitor, int64)       {}
func (base) configured(*Monitor, int64) {}

// group is one candidate finding of a detector: what it saw and how to describe it.
type group interface {
	ev() *evidence
	describe(e *env) description
}

// record is an insight the monitor tracks.
type record struct {
	id       string
	kind     Kind
	key      string
	det      detector
	g        group
	quiet    time.Duration // evidence stopped this long: the insight closes
	open     bool
	closedAt int64
	lastNote int64    // last "updated" change
	sev      Severity // severity when last described
	frozen   *Insight // the description at close time
	cache    *Insight // the last description while open
	cacheGen uint64   // env.gen and version of cache
	cacheVer uint64
	version  uint64 // bumps with each piece of evidence
}

// SetConfig tells the monitor the configuration in force: fixes are written
// against it, rules looked up in it, and rule_shadowed reads it. Call it at start
// and after every change.
func (m *Monitor) SetConfig(cfg *config.Config, rs *policy.Ruleset, now int64) {
	m.mu.Lock()
	m.env.cfg, m.env.rules = cfg, rs
	m.env.gen++
	for _, d := range m.dets {
		d.configured(m, now)
	}
	m.unlock()
}

// SetMemory sets the bytes-per-connection figure source (see Options).
func (m *Monitor) SetMemory(fn func() (float64, string)) {
	m.mu.Lock()
	m.env.bytesFn = fn
	m.mu.Unlock()
}

// Drop gives the detectors one dropped packet.
func (m *Monitor) Drop(d *Drop) {
	m.mu.Lock()
	m.stats.Events++
	m.clock = max(m.clock, d.Time)
	for _, det := range m.dets {
		det.drop(m, d)
	}
	m.unlock()
}

// End gives the detectors one connection that left the table.
func (m *Monitor) End(e *End) {
	m.mu.Lock()
	m.stats.Events++
	if e.Cause != conntrack.EndExpired && e.Cause != conntrack.EndClosed {
		e.At = max(e.At, m.clock)
	}
	m.clock = max(m.clock, e.At)
	for _, det := range m.dets {
		det.end(m, e)
	}
	m.unlock()
}

// Tick says what time it is and what the table holds: detectors that watch rates
// and sizes decide, and insights whose evidence stopped close. The daemon ticks
// every second, replay as capture time passes.
func (m *Monitor) Tick(now int64, t Table) {
	m.mu.Lock()
	m.clock = max(m.clock, now)
	if m.env.tableAt == 0 {
		m.env.prevTable, m.env.prevTableAt = t, now
	} else {
		m.env.prevTable, m.env.prevTableAt = m.env.table, m.env.tableAt
	}
	m.env.table, m.env.tableAt = t, now
	for _, d := range m.dets {
		d.tick(m, now)
	}
	m.closeQuiet(now)
	m.unlock()
}

// closeQuiet closes the insights whose evidence stopped for their quiet time.
func (m *Monitor) closeQuiet(now int64) {
	for _, r := range slices.Clone(m.live) {
		if r.quiet > 0 && now-r.g.ev().last >= int64(r.quiet) {
			m.closeRecord(r, now)
		}
	}
}

// closeRecord closes r at now and keeps its last description in the history.
func (m *Monitor) closeRecord(r *record, now int64) {
	r.open, r.closedAt, r.cache = false, now, nil
	ins := m.describe(r)
	r.frozen = &ins
	r.det.forget(r.key)
	r.g = nil
	m.live = slices.DeleteFunc(m.live, func(x *record) bool { return x == r })
	m.history = append(m.history, r)
	if len(m.history) > maxHistory {
		m.history = slices.Delete(m.history, 0, len(m.history)-maxHistory)
	}
	m.change("closed", ins)
}

// unlock releases the lock and hands the changes made under it to OnChange.
func (m *Monitor) unlock() {
	n := m.notify
	m.notify = nil
	m.mu.Unlock()
	if m.o.OnChange != nil {
		for _, c := range n {
			m.o.OnChange(c)
		}
	}
}

func (m *Monitor) change(event string, ins Insight) {
	m.seq++
	c := Change{Seq: m.seq, Event: event, Insight: ins}
	m.changes = append(m.changes, c)
	if len(m.changes) > maxChanges {
		m.changes = slices.Delete(m.changes, 0, len(m.changes)-maxChanges)
	}
	m.notify = append(m.notify, c)
}

// raise opens the insight of group g (key within kind) if it is not open yet,
// and returns it. quiet is how long its evidence may stop before it closes (0:
// never by time).
func (m *Monitor) raise(det detector, key string, g group, quiet time.Duration) *record {
	for _, r := range m.live {
		if r.kind == det.kind() && r.key == key {
			r.quiet = quiet
			return r
		}
	}
	r := &record{id: m.newID(det.kind(), key), kind: det.kind(), key: key, det: det, g: g, quiet: quiet, open: true}
	r.lastNote = g.ev().last
	m.live = append(m.live, r)
	ins := m.describe(r)
	r.sev = ins.Severity
	m.change("opened", ins)
	return r
}

// touched notes new evidence on an open insight: an "updated" change at most
// every updateEvery of evidence time, so that a flood of evidence is a trickle of
// changes.
func (m *Monitor) touched(r *record) {
	if r == nil || !r.open {
		return
	}
	r.version++
	last := r.g.ev().last
	if last-r.lastNote < int64(updateEvery) {
		return
	}
	ins := m.describe(r)
	r.sev, r.lastNote = ins.Severity, last
	m.change("updated", ins)
}

// newID is a short id for an insight of kind about key: the same finding gets the
// same id, run after run; a finding that opens again after it closed gets a
// suffix, so that ids name one insight each.
func (m *Monitor) newID(k Kind, key string) string {
	h := fnv.New32a()
	h.Write([]byte(string(k) + "|" + key))
	base := fmt.Sprintf("%s-%06x", shortKind[k], h.Sum32()&0xffffff)
	if len(m.idUses) >= maxIDSuffixes {
		clear(m.idUses)
	}
	n := m.idUses[base]
	m.idUses[base] = n + 1
	for {
		id := base
		if n > 0 {
			id = fmt.Sprintf("%s.%d", base, n+1)
		}
		if m.byID(id) == nil {
			return id
		}
		n++
	}
}

var shortKind = map[Kind]string{
	AsymmetricPath: "asym", KeepAliveOutlivesTimeout: "keepalive", TablePressure: "table",
	ConnectionLimitHit: "limit", SYNFlood: "synflood", WindowDesync: "desync", RuleShadowed: "shadow",
}

func (m *Monitor) byID(id string) *record {
	for _, r := range m.live {
		if r.id == id {
			return r
		}
	}
	for _, r := range m.history {
		if r.id == id {
			return r
		}
	}
	return nil
}

// Insights returns the open insights, most severe first, then the closed ones
// kept in the history, most recent first.
func (m *Monitor) Insights() []Insight {
	m.mu.Lock()
	defer m.unlock()
	out := make([]Insight, 0, len(m.live)+len(m.history))
	for _, r := range m.live {
		out = append(out, m.describe(r))
	}
	slices.SortStableFunc(out, func(a, b Insight) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		return a.First.Compare(b.First)
	})
	for i := len(m.history) - 1; i >= 0; i-- {
		out = append(out, *m.history[i].frozen)
	}
	return out
}

// Get returns the insight with the given id.
func (m *Monitor) Get(id string) (Insight, bool) {
	m.mu.Lock()
	defer m.unlock()
	r := m.byID(id)
	if r == nil {
		return Insight{}, false
	}
	if r.frozen != nil {
		return *r.frozen, true
	}
	return m.describe(r), true
}

// Changes returns the changes after seq (at most the last maxChanges) and the
// sequence number of the latest change, to ask from next time.
func (m *Monitor) Changes(after uint64) ([]Change, uint64) {
	m.mu.Lock()
	defer m.unlock()
	i, _ := slices.BinarySearchFunc(m.changes, after+1, func(c Change, s uint64) int { return cmp.Compare(c.Seq, s) })
	return slices.Clone(m.changes[i:]), m.seq
}

// Stats describes the monitor.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.unlock()
	s := m.stats
	s.Open, s.Closed = len(m.live), len(m.history)
	return s
}

// OpenByKind counts the open insights of each kind, every kind present.
func (m *Monitor) OpenByKind() map[Kind]int {
	m.mu.Lock()
	defer m.unlock()
	out := make(map[Kind]int, len(shortKind))
	for _, k := range Kinds() {
		out[k] = 0
	}
	for _, r := range m.live {
		out[r.kind]++
	}
	return out
}

// lostEvents counts events a feed had no room for.
func (m *Monitor) lostEvents(n uint64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.stats.Lost += n
	m.mu.Unlock()
}

// describe writes r's insight as of now, against the configuration in force.
func (m *Monitor) describe(r *record) Insight {
	if r.frozen != nil {
		return *r.frozen
	}
	if r.cache != nil && r.cacheGen == m.env.gen && r.cacheVer == r.version {
		return *r.cache
	}
	ev := r.g.ev()
	d := r.g.describe(&m.env)
	ins := Insight{
		ID: r.id, Kind: r.kind, Severity: d.severity, Open: r.open, Summary: d.summary,
		First: utc(ev.first), Last: utc(ev.last), Count: ev.count, CountOf: d.countOf,
		Connections: d.conns, ConnectionsAtLeast: d.connsAtLeast, Conns: d.connList,
		Hosts: d.hosts, Figures: d.figures,
		Evidence: Evidence{Samples: ev.samples(&m.env), Notes: d.notes},
	}
	if ins.Hosts == nil {
		ins.Hosts = []Host{}
	}
	if ins.Figures == nil {
		ins.Figures = map[string]float64{}
	}
	if !r.open {
		ins.Closed = utc(r.closedAt)
	}
	ins.Fix, _ = m.env.renderFixes(d.fixes)
	r.cache, r.cacheGen, r.cacheVer = &ins, m.env.gen, r.version
	return ins
}

func utc(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// description is what a group says about itself.
type description struct {
	severity     Severity
	summary      string
	countOf      string
	conns        int
	connsAtLeast bool
	connList     []string
	hosts        []Host
	figures      map[string]float64
	notes        []string
	fixes        []fixSpec
}
