// Package firewall is keepstate's engine: the one pipeline every packet goes through,
// whether it comes from NFQUEUE, from a capture being replayed or from `explain`.
//
//	decode -> anti-spoofing -> connection lookup -> rules (new connections only)
//	       -> insert -> verdict {accept, drop, reject} + reason + rule
//
// The engine does no I/O. It returns a Decision that says everything a feeder needs
// to log, count and answer the packet; feeders (package dataplane) do the rest. The
// compiled ruleset and settings are swapped atomically by Apply while connections
// stay in the table.
package firewall

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

// Action is what happens to a packet.
type Action uint8

const (
	Accept Action = iota + 1
	Drop          // silently
	Reject        // refused and answered: TCP RST or ICMP unreachable (a Deny rule)
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Reject:
		return "reject"
	}
	return "invalid"
}

// Rule numbers in a Decision that are not rules of the ruleset.
const (
	NoRule      = -2 // no rule was consulted (a tracked connection, a decode error, ...)
	DefaultRule = -1 // the fixed last rule decided
)

// Meta flags stored with a connection.
const (
	flagLogConnection = 1 << iota // log the connection when it ends
	flagLogPackets                // log every packet of the connection in the filter log
)

// Decision is the engine's verdict on one packet with everything that explains it.
type Decision struct {
	Action Action
	Reason reason.Reason // None when accepted

	// Rule is the index of the rule that decided a new connection, the rule that
	// admitted an existing one when it is still in the ruleset, DefaultRule, or NoRule.
	Rule int
	// LogPackets: the deciding rule asks for every packet in the filter log.
	LogPackets bool

	// InIface and OutIface index Ruleset().Interfaces(); -1 when unknown. On the
	// established path of a connection whose packets are not logged they are left
	// as the feeder gave them (OutIface -1): nothing needs them there.
	InIface, OutIface int

	Conn    conntrack.Result // the table's answer (state, direction, connection id, idle, ...)
	Created bool             // this packet opened a new connection
	// Recovered: this packet picked a TCP connection up mid-stream in strict
	// mode, in the recovery window after an unclean start (see RecoverUntil).
	Recovered bool
	// Reversed: the rules were asked about the connection the other way round,
	// because this packet picks it up from its responder's side (loose mode: a
	// SYN-ACK, or a reply the rules permit only in the opening direction).
	Reversed bool

	DecodeErr error // set for reason.Malformed and reason.Unsupported
}

// Dropped reports whether the packet does not pass.
func (d *Decision) Dropped() bool { return d.Action != Accept }

// compiled is one immutable generation of policy and settings.
type compiled struct {
	settings Settings
	rules    *policy.Ruleset
	ruleByID map[uint32]int // config rule id -> index in rules
	// metas[i] is what a connection rule i permits is stored with: the rule, its
	// log flags and its state options.
	metas []conntrack.Meta
	// loose: some rule picks connections up mid-stream (Handshake=loose, or
	// inherit while Require3WayHandshake=0).
	loose   bool
	options bool // some rule has a state option
}

// Engine runs the pipeline. It is safe for concurrent use.
type Engine struct {
	table *conntrack.Table
	cur   atomic.Pointer[compiled]
	opts  Options

	applyMu      sync.Mutex // serialises Apply and RecoverUntil; packets never take it
	recoverUntil int64      // under applyMu: see RecoverUntil

	accepted atomic.Uint64
	rejected atomic.Uint64 // part of dropped: refused with an answer (Deny)
	dropped  [reason.Count]atomic.Uint64
}

// Options are the engine's fixed choices, set once at New.
type Options struct {
	// OnConnEnd is called when a connection leaves the table, with the rule that
	// admitted it when that rule still exists (nil otherwise). It must not block.
	OnConnEnd func(ConnEnd)
	// OnConnChange hears of every connection's creation, state changes and end
	// (conntrack.Config.OnChange: batched, never under a table lock; the slice is
	// reused after the call). It must not block.
	OnConnChange func([]conntrack.Change)
	// TrackUpdates marks connections whose windows, last-seen time or counters
	// change, for Table().SweepUpdates (conntrack.Config.TrackUpdates).
	TrackUpdates bool
	// VerifyChecksums drops packets whose checksums do not verify. Off by default:
	// NFQUEUE packets were checked by the kernel and offloaded captures carry bogus
	// checksums.
	VerifyChecksums bool
	// Shards of the connection table; 0 for its default.
	Shards int
}

// ConnEnd describes a connection that left the table.
type ConnEnd struct {
	Info  conntrack.ConnInfo
	Cause conntrack.EndCause
	Rule  *policy.Rule // nil when the rule is gone or was the default
	Log   bool         // the admitting rule asked for a connection log line
}

// New builds an engine that decides by rules rs with settings s.
func New(rs *policy.Ruleset, s Settings, opts Options) (*Engine, error) {
	c, err := compile(rs, s)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts}
	e.cur.Store(c)
	e.table = conntrack.New(e.tableConfig(c))
	return e, nil
}

func compile(rs *policy.Ruleset, s Settings) (*compiled, error) {
	if rs == nil {
		return nil, errors.New("firewall: no ruleset")
	}
	c := &compiled{settings: s, rules: rs, ruleByID: make(map[uint32]int, rs.NumRules()), metas: make([]conntrack.Meta, rs.NumRules())}
	idle := map[time.Duration]bool{}
	for i := 0; i < rs.NumRules(); i++ {
		r := rs.Rule(i)
		c.ruleByID[ruleID(rs, i)] = i
		m := conntrack.Meta{Rule: ruleID(rs, i), Handshake: handshakeOf(r.Handshake),
			MaxPerSource: int32(min(r.MaxConnectionsPerSource, 1<<30)), IdleTimeout: r.IdleTimeout}
		if r.LogConnections {
			m.Flags |= flagLogConnection
		}
		if r.LogPackets {
			m.Flags |= flagLogPackets
		}
		c.metas[i] = m
		c.options = c.options || r.HasStateOptions()
		c.loose = c.loose || r.Handshake == policy.HandshakeLoose
		if r.IdleTimeout > 0 {
			idle[r.IdleTimeout] = true
		}
	}
	if len(idle) > policy.MaxIdleTimeouts {
		return nil, fmt.Errorf("firewall: the rules use %d distinct IdleTimeout values, more than the %d allowed", len(idle), policy.MaxIdleTimeouts)
	}
	return c, nil
}

func handshakeOf(h policy.Handshake) conntrack.Handshake {
	switch h {
	case policy.HandshakeStrict:
		return conntrack.HandshakeStrict
	case policy.HandshakeLoose:
		return conntrack.HandshakeLoose
	}
	return conntrack.HandshakeInherit
}

// looseFor reports whether rule i (DefaultRule for the default rule) may pick a
// connection up mid-stream.
func (c *compiled) looseFor(i int) bool {
	if i < 0 {
		return !c.settings.Conntrack.Strict
	}
	switch c.rules.Rule(i).Handshake {
	case policy.HandshakeLoose:
		return true
	case policy.HandshakeStrict:
		return false
	}
	return !c.settings.Conntrack.Strict
}

// remeta returns m with the options its rule has in c: a connection keeps its
// rule and log flags, and takes the rule's current state options (none when the
// rule is gone).
func (c *compiled) remeta(m conntrack.Meta) conntrack.Meta {
	out := conntrack.Meta{Rule: m.Rule, Flags: m.Flags}
	if i, ok := c.ruleByID[m.Rule]; ok && m.Rule != 0 {
		n := c.metas[i]
		out.Handshake, out.MaxPerSource, out.IdleTimeout = n.Handshake, n.MaxPerSource, n.IdleTimeout
	}
	return out
}

// ruleID is the identity stored with a connection: the configuration's rule id, so a
// reload that keeps a rule keeps its connections' attribution. Ids start at 1; 0 is
// the default rule.
func ruleID(rs *policy.Ruleset, i int) uint32 {
	if id := rs.Rule(i).ID; id > 0 {
		return uint32(id)
	}
	return uint32(i + 1)
}

// tableConfig is the connection table's configuration under c, with the engine's
// own hooks.
func (e *Engine) tableConfig(c *compiled) conntrack.Config {
	tc := c.settings.Conntrack
	tc.Shards = e.opts.Shards
	tc.OnEnd = e.connEnded
	tc.LooseRules = c.loose
	tc.Resolve = e.resolveMeta
	tc.OnChange = e.opts.OnConnChange
	tc.TrackUpdates = e.opts.TrackUpdates
	tc.RecoverUntil = e.recoverUntil
	return tc
}

// resolveMeta gives a connection restored from a snapshot its rule's options as
// the ruleset in force defines them.
func (e *Engine) resolveMeta(m conntrack.Meta) conntrack.Meta { return e.cur.Load().remeta(m) }

// RecoverUntil opens strict mode's recovery window: until t (Unix ns), a
// mid-stream TCP packet may pick up a connection, as in loose mode, when the
// rules permit it; its Decision says Recovered. The daemon calls it after an
// unclean start (RecoverAfterCrashSeconds), for the connections its last snapshot
// did not hold. It outlives configuration changes; 0 closes the window.
func (e *Engine) RecoverUntil(t int64) {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.recoverUntil = t
	e.table.Reconfigure(e.tableConfig(e.cur.Load()))
}

func (e *Engine) connEnded(info conntrack.ConnInfo, cause conntrack.EndCause) {
	if e.opts.OnConnEnd == nil {
		return
	}
	end := ConnEnd{Info: info, Cause: cause, Log: info.Meta.Flags&flagLogConnection != 0}
	c := e.cur.Load()
	if i, ok := c.ruleByID[info.Meta.Rule]; ok {
		end.Rule = c.rules.Rule(i)
	}
	e.opts.OnConnEnd(end)
}

// Table returns the connection table, for listing, flushing and snapshots.
func (e *Engine) Table() *conntrack.Table { return e.table }

// Ruleset returns the ruleset in force.
func (e *Engine) Ruleset() *policy.Ruleset { return e.cur.Load().rules }

// Settings returns the settings in force.
func (e *Engine) Settings() Settings { return e.cur.Load().settings }

// Decide decodes frame b (captured on link) and runs it through the pipeline. in is
// the ingress interface index, or -1 when unknown (the engine then infers it from the
// source address and skips anti-spoofing, which would be circular). p is the
// caller's scratch space; it holds the decoded packet afterwards.
func (e *Engine) Decide(b []byte, link packet.LinkType, in int, now int64, p *packet.Parsed) Decision {
	var d Decision
	e.DecideInto(b, link, in, now, p, &d)
	return d
}

// DecideInto is Decide writing into d, which it overwrites. Feeders that run per
// packet use it with one Decision they reuse: the decision is large enough that
// copying it back through the call chain costs about as much as a table lookup.
func (e *Engine) DecideInto(b []byte, link packet.LinkType, in int, now int64, p *packet.Parsed, d *Decision) {
	e.DecideCutInto(b, 0, link, in, now, p, d)
}

// DecideCutInto is DecideInto for a frame whose length on the wire is known (see
// Batch.AddCut): a frame that may have been cut short, or a whole one whose IP
// header must not claim more.
func (e *Engine) DecideCutInto(b []byte, wireLen int, link packet.LinkType, in int, now int64, p *packet.Parsed, d *Decision) {
	if e.decode(b, wireLen, link, in, p, d) {
		e.ProcessInto(p, in, now, d)
	}
}

// decode decodes frame b, wireLen bytes long on the wire, into p and, if checksums
// are verified, checks them. On failure it writes the drop into d, counts it and
// returns false.
func (e *Engine) decode(b []byte, wireLen int, link packet.LinkType, in int, p *packet.Parsed, d *Decision) bool {
	if err := p.DecodeWire(b, link, wireLen); err != nil {
		r := decodeReason(err)
		*d = Decision{Action: Drop, Reason: r, Rule: NoRule, InIface: in, OutIface: -1, DecodeErr: err}
		e.dropped[r].Add(1)
		return false
	}
	if e.opts.VerifyChecksums {
		if err := p.VerifyChecksums(b); err != nil {
			*d = Decision{Action: Drop, Reason: reason.BadChecksum, Rule: NoRule, InIface: in, OutIface: -1, DecodeErr: err}
			e.dropped[reason.BadChecksum].Add(1)
			return false
		}
	}
	return true
}

// Process runs an already decoded packet through the pipeline.
func (e *Engine) Process(p *packet.Parsed, in int, now int64) Decision {
	var d Decision
	e.ProcessInto(p, in, now, &d)
	return d
}

// ProcessInto is Process writing into d, which it overwrites.
func (e *Engine) ProcessInto(p *packet.Parsed, in int, now int64, d *Decision) {
	e.process(p, in, now, d, nil)
	if d.Action == Accept {
		e.accepted.Add(1)
	} else {
		e.countDrop(d)
	}
}

// countDrop counts a packet that does not pass.
func (e *Engine) countDrop(d *Decision) {
	if d.Action == Reject {
		e.rejected.Add(1)
	}
	e.dropped[d.Reason].Add(1)
}

// process decides p. pr is p's probe when a batch prepared it, or nil.
func (e *Engine) process(p *packet.Parsed, in int, now int64, d *Decision, pr *conntrack.Probe) {
	c := e.cur.Load()
	rs := c.rules
	d.Action, d.Reason, d.Rule, d.LogPackets = 0, reason.None, NoRule, false
	d.InIface, d.OutIface, d.Created, d.DecodeErr, d.Reversed, d.Recovered = in, -1, false, nil, false, false

	if in >= 0 && c.settings.AntiSpoofing && !rs.SpoofOK(in, p.Src) {
		d.Conn = conntrack.Result{}
		d.Action, d.Reason = Drop, reason.AntiSpoofing
		d.OutIface = rs.IfaceForAddr(p.Dst)
		return
	}

	e.table.TrackPrepared(p, pr, now, &d.Conn)
	switch d.Conn.Verdict {
	case conntrack.Accept:
		// The established path: interfaces are only worked out when a log line
		// will need them.
		d.Action = Accept
		if d.Conn.Meta.Flags&flagLogPackets != 0 {
			d.LogPackets = true
			if i, ok := c.ruleByID[d.Conn.Meta.Rule]; ok {
				d.Rule = i
			}
			d.inferIfaces(rs, p)
		}
		return
	case conntrack.Drop:
		d.Action, d.Reason = Drop, d.Conn.Reason
		d.inferIfaces(rs, p)
		return
	}

	// No connection, and this packet may open one: the rules decide.
	d.inferIfaces(rs, p)
	rule, action, as := decideNew(rs, p, d)
	d.Rule, d.Reversed = rule, as == conntrack.Reply
	meta := conntrack.Meta{}
	if rule >= 0 {
		d.LogPackets = rs.Rule(rule).LogPackets
		meta = c.metas[rule]
	} else {
		d.Rule = DefaultRule
	}
	if why := d.Conn.StrictReason; why != reason.None && !(action == policy.Permit && c.looseFor(rule)) {
		// A pickup (a TCP packet of no connection that is not a SYN) opens a
		// connection only under a rule that is loose. Otherwise it gets the drop
		// of strict tracking: under Require3WayHandshake=1 whatever the rules say
		// (never a Deny's RST to a stray segment), under 0 when the rule that
		// permits it is strict, whose option then decided.
		if action == policy.Permit || c.settings.Conntrack.Strict {
			if action != policy.Permit {
				d.Rule = NoRule
			}
			d.Action, d.Reason, d.LogPackets = Drop, why, false
			return
		}
	}
	switch action {
	case policy.Permit:
	case policy.Deny:
		d.Action, d.Reason = Reject, ruleReason(rule)
		return
	default:
		d.Action, d.Reason = Drop, ruleReason(rule)
		return
	}

	e.table.CreatePrepared(p, pr, now, meta, as, &d.Conn)
	if d.Conn.Verdict != conntrack.Accept {
		d.Action, d.Reason = Drop, d.Conn.Reason
		return
	}
	d.Action, d.Created = Accept, true
	d.Recovered = p.Proto == packet.ProtoTCP && p.TCPFlags&packet.SYN == 0 && !c.looseFor(rule)
}

// decideNew asks the rules about a packet that may open a connection, and says which
// way round the connection runs. A TCP connection picked up mid-stream (loose mode)
// may have been opened by either side, and rules are written in the direction
// connections are opened ("web servers to Tomcat on 8080"): the first packet the
// firewall sees of a connection whose client's packets take another path is the
// server's reply, which that rule would refuse as seen. So for a pickup both
// orientations are asked: a SYN-ACK is a reply by definition; otherwise the
// orientation the rules permit wins, and when both are permitted the side with the
// lower port is taken for the server.
func decideNew(rs *policy.Ruleset, p *packet.Parsed, d *Decision) (rule int, action policy.Action, as conntrack.Dir) {
	q := packetQuery(p, d)
	pickup := p.Proto == packet.ProtoTCP && p.TCPFlags&packet.SYN == 0
	if d.Conn.Dir != conntrack.Reply && !pickup {
		rule, action = rs.Match(&q)
		return rule, action, conntrack.Original
	}
	rq := q.Reverse()
	rrule, raction := rs.Match(&rq)
	if d.Conn.Dir == conntrack.Reply {
		return rrule, raction, conntrack.Reply
	}
	rule, action = rs.Match(&q)
	if raction == policy.Permit && (action != policy.Permit || p.SrcPort < p.DstPort) {
		return rrule, raction, conntrack.Reply
	}
	return rule, action, conntrack.Original
}

// inferIfaces fills the egress interface, and the ingress one when the feeder did
// not know it, from the interfaces' networks.
func (d *Decision) inferIfaces(rs *policy.Ruleset, p *packet.Parsed) {
	if d.InIface < 0 {
		d.InIface = rs.IfaceForAddr(p.Src)
	}
	d.OutIface = rs.IfaceForAddr(p.Dst)
}

// decodeReason classifies a decode error: a protocol keepstate does not inspect, a
// first fragment too short to hold its transport header (an evasion trick, so a
// fragment problem), or plain malformed headers.
func decodeReason(err error) reason.Reason {
	de, ok := err.(packet.Error)
	switch {
	case ok && de.Unsupported():
		return reason.Unsupported
	case ok && de == packet.ErrTinyFragment:
		return reason.Fragment
	}
	return reason.Malformed
}

func ruleReason(rule int) reason.Reason {
	if rule < 0 {
		return reason.DefaultRule
	}
	return reason.TrafficRule
}

// packetQuery is the rules' question about p as it travels, between d's
// interfaces.
func packetQuery(p *packet.Parsed, d *Decision) policy.Query {
	return policy.Query{
		Src: p.Src, Dst: p.Dst, Proto: uint8(p.Proto),
		SrcPort: p.SrcPort, DstPort: p.DstPort, ICMPType: p.ICMPType,
		InIface: d.InIface, OutIface: d.OutIface,
	}
}

// RuleQuery is the question the rules were asked about p, the packet d decided,
// when p could open a connection: about the connection the other way round when
// d.Reversed.
func (d *Decision) RuleQuery(p *packet.Parsed) policy.Query {
	q := packetQuery(p, d)
	if d.Reversed {
		return q.Reverse()
	}
	return q
}

// Counters is a snapshot of the engine's packet counters.
type Counters struct {
	Accepted uint64
	Rejected uint64          // packets refused with a TCP RST or ICMP answer: also in Dropped
	Dropped  reason.Counters // by reason; Dropped[reason.None] stays 0: no drop without a reason
}

// Counters returns the packet counters so far.
func (e *Engine) Counters() Counters {
	var c Counters
	c.Accepted = e.accepted.Load()
	c.Rejected = e.rejected.Load()
	for i := range e.dropped {
		c.Dropped[i] = e.dropped[i].Load()
	}
	return c
}

// Expire removes connections idle past their timeout at now. Feeders call it
// periodically (live) or as capture time advances (replay); Track and Create also
// expire a little on their own.
func (e *Engine) Expire(now int64) int { return e.table.Expire(now) }
