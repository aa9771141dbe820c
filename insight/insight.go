package insight

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names what an insight found. The names are stable: scripts, metrics labels
// and the web page key on them.
type Kind string

const (
	// AsymmetricPath: a server's replies cross the firewall, its clients'
	// requests do not (a switch or a route carries them around it).
	AsymmetricPath Kind = "asymmetric_path"
	// KeepAliveOutlivesTimeout: connections are forgotten while idle and their
	// keep-alives (or their next use) come after the idle timeout ended them.
	KeepAliveOutlivesTimeout Kind = "keepalive_outlives_timeout"
	// TablePressure: the connection table is near full; timeouts are scaled
	// down, connections evicted or refused.
	TablePressure Kind = "table_pressure"
	// ConnectionLimitHit: a host keeps hitting a per-source connection limit.
	ConnectionLimitHit Kind = "connection_limit_hit"
	// SYNFlood: half-open connections to one service from many sources.
	SYNFlood Kind = "syn_flood"
	// WindowDesync: established connections that were passing suddenly send
	// packets outside their tracked windows, many at once.
	WindowDesync Kind = "window_desync"
	// RuleShadowed: a traffic rule that can never match, found when a
	// configuration is loaded.
	RuleShadowed Kind = "rule_shadowed"
)

// Kinds lists every kind in the order reports and metrics show them.
func Kinds() []Kind {
	return []Kind{AsymmetricPath, KeepAliveOutlivesTimeout, TablePressure, ConnectionLimitHit,
		SYNFlood, WindowDesync, RuleShadowed}
}

// Severity says how urgent an insight is.
type Severity uint8

const (
	Info     Severity = iota + 1 // worth knowing; nothing is broken
	Warning                      // something is degraded or about to break
	Critical                     // connections are failing now
)

var severityNames = [...]string{Info: "info", Warning: "warning", Critical: "critical"}

func (s Severity) String() string {
	if int(s) < len(severityNames) && severityNames[s] != "" {
		return severityNames[s]
	}
	return "unknown"
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n != "" && n == name {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", name)
}

// Insight is one finding: what is wrong, how sure and how big, the packets that
// show it and the narrowest configuration change that works around it.
type Insight struct {
	ID       string   `json:"id"` // stable for the same finding: kind and what it is about
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Open     bool     `json:"open"` // false once its evidence stopped for the kind's quiet time
	// Summary is the finding in plain words, one paragraph: what, where, how
	// many, what it means and what to do.
	Summary string    `json:"summary"`
	First   time.Time `json:"first_seen"`
	Last    time.Time `json:"last_seen"`
	// Closed is when the insight closed: its last evidence plus the kind's quiet
	// time. Zero while open.
	Closed time.Time `json:"closed,omitzero"`
	// Count is how many events the insight is built from (CountOf says what they
	// are: "dropped packets", "connections"...).
	Count   uint64 `json:"count"`
	CountOf string `json:"count_of"`
	// Connections is how many distinct connections are involved; ConnectionsAtLeast
	// says the detector stopped telling them apart at its cap (then more were).
	Connections        int  `json:"connections"`
	ConnectionsAtLeast bool `json:"connections_at_least,omitempty"`
	// Conns are a few of them, as "tcp 10.1.0.2:27779 > 10.2.0.2:8080".
	Conns []string `json:"conns,omitempty"`
	Hosts []Host   `json:"hosts"`
	// Figures are the numbers the summary quotes, by name (documented per kind in
	// doc.go), for scripts and tests.
	Figures  map[string]float64 `json:"figures"`
	Evidence Evidence           `json:"evidence"`
	// Fix lists the changes that work around the finding, narrowest first (one
	// rule before every rule).
	Fix []Fix `json:"fix"`
}

// Host is an address the insight is about and its part in it.
type Host struct {
	Addr string `json:"addr"`           // address, address:port or prefix
	Role string `json:"role"`           // server, clients, source, destination, ...
	Note string `json:"note,omitempty"` // e.g. "interface DMZ", "412 refused"
}

// Evidence is what the insight was concluded from.
type Evidence struct {
	Samples []Sample `json:"samples"`
	// Notes are further observations, one sentence each ("no packet of these
	// connections came from the clients' side").
	Notes []string `json:"notes,omitempty"`
}

// Sample is one event the insight counted: a dropped packet or an ended connection.
type Sample struct {
	Time time.Time `json:"time"`
	// Packet describes the packet in the words `keepstate explain` reads:
	// "tcp 10.2.0.2:8080 > 10.1.0.2:27779 flags SA seq 1 ack 2 iface DMZ".
	Packet string `json:"packet"`
	Reason string `json:"reason"` // the drop reason's id, or the connection's end cause
	Detail string `json:"detail"` // the reason in words, with idle times and timeouts
	// Explain is the command that walks this packet through the pipeline.
	Explain string `json:"explain,omitempty"`
}

// Fix is one way to work around an insight.
type Fix struct {
	// Scope says how far the change reaches: "rule" (the connections of one
	// rule), "global" (every connection), or "operation" (a command, not a
	// configuration change).
	Scope string `json:"scope"`
	// Title is the change in the configuration's words: "Handshake=loose on rule
	// 'DMZ to Tomcat' only", "TcpEstablishedTimeout=8100".
	Title string `json:"title"`
	// Cost is what the change gives up: security, memory, behaviour.
	Cost string `json:"cost"`
	// Diff is the change as a unified diff of winroute.cfg, from the
	// configuration in force; empty for an operation.
	Diff string `json:"diff,omitempty"`
	// Command is the operation to run, for Scope "operation".
	Command string `json:"command,omitempty"`
	// Applicable: `keepstate insights apply` can make this change.
	Applicable bool `json:"applicable"`
}

// Stats describe the monitor itself: what it holds and what it had to leave out to
// stay within its bounds.
type Stats struct {
	Events        uint64 `json:"events"`         // drops and connection ends looked at
	Lost          uint64 `json:"lost"`           // events the feed's queue had no room for
	GroupsDropped uint64 `json:"groups_dropped"` // candidate findings not tracked: every slot was busy
	Open          int    `json:"open"`
	Closed        int    `json:"closed"` // kept in the history
}
