package daemon

import (
	"cmp"
	"os"
	"slices"
	"time"

	"keepstate/conntrack"
	"keepstate/policy"
)

// Status describes the running daemon.
func (d *Daemon) Status() *Status {
	now := d.now()
	s := &Status{
		PID: os.Getpid(), Started: d.started, UptimeSeconds: now.Sub(d.started).Seconds(),
		FailMode: failMode(d.o.FailOpen), Socket: d.o.SocketPath, StatePath: d.o.StatePath, LogDir: d.o.LogDir,
		Connections: d.eng.Table().Len(), Restored: d.restored,
	}
	if d.state != nil {
		info := d.snaps.get()
		s.Snapshot, s.UncleanStart, s.RecoverUntil = &info, d.state.unclean, d.recoverUntil
	}
	if d.plane != nil {
		s.Backend = d.plane.Backend()
	}
	if d.metrics != nil {
		s.MetricsURL = d.metrics.url()
	}
	d.mu.Lock()
	s.Config = d.cur.info(d.o.ConfigPath)
	s.Pending = d.pendingInfoLocked()
	d.mu.Unlock()
	return s
}

// Stats gathers the engine's, the table's, the plane's and the logger's counters.
func (d *Daemon) Stats() *Stats {
	c := d.eng.Counters()
	ts := d.eng.Table().Stats()
	s := &Stats{
		Accepted:      c.Accepted,
		Dropped:       c.Dropped.Total(),
		DropsByReason: c.Dropped.Map(),
		Conntrack: ConntrackStats{
			Connections: ts.Conns, Tombstones: ts.Tombstones, Created: ts.Created, Expired: ts.Expired,
			Closed: ts.Closed, Evicted: ts.Evicted, Flushed: ts.Flushed, TableFull: ts.TableFull, ConnLimit: ts.ConnLimit,
			RSTInexact: ts.RSTInexact,
		},
	}
	s.Packets = s.Accepted + s.Dropped
	if d.plane != nil {
		s.Plane = d.plane.Stats()
		if f := s.Plane.FastPath; f != nil {
			// Packets the kernel accepted for the engine's offloaded connections
			// are the engine's decisions too, made ahead of time.
			s.Accepted += f.Packets
		}
		s.QueueDrops = s.Plane.QueueDropped + s.Plane.UserDropped + s.Plane.SocketOverflows
		s.NetlinkErrors = s.Plane.NetlinkErrors
	}
	ls := d.logs.logger.Stats()
	s.Log = LogStats{Lines: ls.Lines, Suppressed: ls.Suppressed, WriteErrors: ls.WriteErrors}
	return s
}

// ListConns lists the connections f selects, oldest first, at most limit of them
// (0: all).
func (d *Daemon) ListConns(f Filter, limit int) *ConnList {
	now := d.now().UnixNano()
	names := ruleNames(d.eng.Ruleset())
	t := d.eng.Table()
	out := &ConnList{Total: t.Len(), Conns: []Conn{}}
	var infos []conntrack.ConnInfo
	t.Range(func(ci conntrack.ConnInfo) bool {
		if f.Match(&ci) {
			infos = append(infos, ci)
		}
		return true
	})
	out.Matched = len(infos)
	slices.SortFunc(infos, func(a, b conntrack.ConnInfo) int {
		if a.Created != b.Created {
			return cmp.Compare(a.Created, b.Created)
		}
		return cmp.Compare(int64(a.ID), int64(b.ID))
	})
	if limit > 0 && len(infos) > limit {
		infos = infos[:limit]
	}
	for i := range infos {
		out.Conns = append(out.Conns, connOf(&infos[i], now, names))
	}
	return out
}

func seconds(ns int64) float64 { return float64(ns) / float64(time.Second) }

func connOf(ci *conntrack.ConnInfo, now int64, names map[uint32]string) Conn {
	idle := max(now-ci.LastSeen, 0)
	return Conn{
		ID: ci.ID, Proto: ci.Proto.String(),
		Src: ci.Src.String(), SrcPort: ci.SrcPort, Dst: ci.Dst.String(), DstPort: ci.DstPort,
		State: ci.State.String(), Assured: ci.Assured,
		Age:  seconds(max(now-ci.Created, 0)),
		Idle: seconds(idle), Timeout: ci.Timeout.Seconds(),
		TimeoutLeft: seconds(max(int64(ci.Timeout)-idle, 0)),
		PacketsOrig: ci.Packets[0], PacketsReply: ci.Packets[1],
		BytesOrig: ci.Bytes[0], BytesReply: ci.Bytes[1],
		Rule: names[ci.Meta.Rule],
	}
}

// ruleNames maps the rule identity the engine stores with a connection (the
// configuration's rule id, or the position + 1 of a rule without one) to the
// rule's name.
func ruleNames(rs *policy.Ruleset) map[uint32]string {
	m := make(map[uint32]string, rs.NumRules())
	for i := 0; i < rs.NumRules(); i++ {
		r := rs.Rule(i)
		id := uint32(i + 1)
		if r.ID > 0 {
			id = uint32(r.ID)
		}
		m[id] = r.Name
	}
	return m
}

// FlushConns ends the connections f selects; their next packets are judged as
// new ones. It is written to warning.log.
func (d *Daemon) FlushConns(f Filter) *FlushResult {
	n := d.eng.Table().CloseIf(f.Match, conntrack.EndFlushed)
	d.warn("conntrack_flushed", "%d connection(s) flushed by the administrator (filter: %s)", n, f)
	return &FlushResult{Flushed: n}
}
