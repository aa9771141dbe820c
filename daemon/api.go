package daemon

import (
	"time"
)

// The results of the admin commands, as they travel in Response.Result.

// Status answers CmdStatus.
type Status struct {
	PID           int       `json:"pid"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_s"`

	Config     ConfigInfo `json:"config"`
	Backend    string     `json:"backend"`
	FailMode   string     `json:"fail_mode"` // "open" or "closed"
	Socket     string     `json:"socket"`
	StatePath  string     `json:"state_path,omitempty"`
	LogDir     string     `json:"log_dir"`
	MetricsURL string     `json:"metrics_url,omitempty"`

	Connections int `json:"connections"`
	Restored    int `json:"restored_connections"` // from the snapshot at start
	// UncleanStart: the previous run did not stop (a crash, SIGKILL, power
	// loss), so its snapshot may miss its last connections.
	UncleanStart bool `json:"unclean_start,omitempty"`
	// RecoverUntil ends the window after an unclean start in which strict mode
	// picks connections up mid-stream (RecoverAfterCrashSeconds); zero if none.
	RecoverUntil time.Time     `json:"recover_until,omitzero"`
	Snapshot     *SnapshotInfo `json:"snapshot,omitempty"` // nil without --state

	// Pending is the change waiting for confirmation, nil when none.
	Pending *PendingInfo `json:"pending,omitempty"`
}

// ConfigInfo describes the configuration in force.
type ConfigInfo struct {
	Path       string    `json:"path"`       // --config
	Source     string    `json:"source"`     // where it was loaded or imported from
	Hash       string    `json:"hash"`       // first 16 hex digits of SHA-256 of its winroute.cfg
	Generation uint64    `json:"generation"` // 1 at start, +1 per change in force (rollbacks too)
	Applied    time.Time `json:"applied"`
	Summary    string    `json:"summary"`
}

// PendingInfo is a change in force that rolls back unless confirmed.
type PendingInfo struct {
	Hash         string    `json:"hash"`
	Source       string    `json:"source"`
	Deadline     time.Time `json:"deadline"`
	SecondsLeft  float64   `json:"seconds_left"`
	RollbackHash string    `json:"rollback_hash"` // the configuration it goes back to
}

// Stats answers CmdStats. Packets, Accepted and DropsByReason are the engine's
// decisions (Accepted includes the packets a kernel fast path accepted for
// connections the engine handed over: Plane.FastPath.Packets); Plane is what the data plane saw and did (queue drops, netlink
// errors, verdict latency).
type Stats struct {
	Packets       uint64            `json:"packets"`
	Accepted      uint64            `json:"accepted"`
	Dropped       uint64            `json:"dropped"`
	DropsByReason map[string]uint64 `json:"drops_by_reason"`

	Conntrack ConntrackStats `json:"conntrack"`

	QueueDrops    uint64     `json:"queue_drops"`    // kernel queue_dropped + user_dropped + socket overflows
	NetlinkErrors uint64     `json:"netlink_errors"` // failed netlink calls and error answers
	Plane         PlaneStats `json:"plane"`

	Log LogStats `json:"log"`
}

// ConntrackStats are the connection table's counters.
type ConntrackStats struct {
	Connections int    `json:"connections"`
	Tombstones  int    `json:"tombstones"`
	Created     uint64 `json:"created"`
	Expired     uint64 `json:"expired"`
	Closed      uint64 `json:"closed"`
	Evicted     uint64 `json:"evictions"`
	Flushed     uint64 `json:"flushed"`
	TableFull   uint64 `json:"table_full"`
	ConnLimit   uint64 `json:"connection_limit"`
	// RSTInexact counts RSTs in the window but not at the sender's exact next
	// sequence: passed without closing anything (RFC 5961). Many of them point
	// at RST injection.
	RSTInexact uint64 `json:"rst_inexact"`
}

// LogStats are the logger's counters.
type LogStats struct {
	Lines       uint64 `json:"lines"`
	Suppressed  uint64 `json:"suppressed"`
	WriteErrors uint64 `json:"write_errors"`
}

// Conn is one connection of a CmdConntrackList answer. Times are seconds.
type Conn struct {
	ID           uint64  `json:"id"`
	Proto        string  `json:"proto"`
	Src          string  `json:"src"`
	SrcPort      uint16  `json:"sport"`
	Dst          string  `json:"dst"`
	DstPort      uint16  `json:"dport"`
	State        string  `json:"state"`
	Assured      bool    `json:"assured"`
	Age          float64 `json:"age_s"`
	Idle         float64 `json:"idle_s"`
	Timeout      float64 `json:"timeout_s"`
	TimeoutLeft  float64 `json:"timeout_left_s"`
	PacketsOrig  uint64  `json:"packets_original"`
	PacketsReply uint64  `json:"packets_reply"`
	BytesOrig    uint64  `json:"bytes_original"`
	BytesReply   uint64  `json:"bytes_reply"`
	Rule         string  `json:"rule,omitempty"` // the rule that admitted it, when it still exists
}

// ConnList answers CmdConntrackList.
type ConnList struct {
	Matched int    `json:"matched"` // connections that match the filter
	Total   int    `json:"total"`   // connections in the table
	Conns   []Conn `json:"conns"`   // at most Limit of the matched, oldest first
}

// FlushResult answers CmdConntrackFlush.
type FlushResult struct {
	Flushed int `json:"flushed"`
}

// ImportResult answers CmdConfigImport.
type ImportResult struct {
	Config   ConfigInfo   `json:"config"`
	Closed   int          `json:"closed_connections"` // connections the new rules refuse
	Kept     int          `json:"kept_connections"`
	Warnings []string     `json:"warnings,omitempty"` // "file:line: warning: ..." and notes
	Pending  *PendingInfo `json:"pending,omitempty"`  // set when a confirmation is awaited
	Saved    string       `json:"saved,omitempty"`    // the file written, when it was written
}

// ExportResult answers CmdConfigExport.
type ExportResult struct {
	Bundle      []byte `json:"bundle"` // .tgz of the configuration in force
	Hash        string `json:"hash"`
	Unconfirmed bool   `json:"unconfirmed"` // the configuration in force awaits confirmation
}

// ConfirmResult answers CmdConfigConfirm.
type ConfirmResult struct {
	Config ConfigInfo `json:"config"`
	Saved  string     `json:"saved"`
}
