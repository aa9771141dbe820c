package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/policy"
	"keepstate/reason"
)

// Settings are the scalar knobs of winroute.cfg. Durations are whole seconds in the
// file. The zero Settings is not meaningful: start from Default().Settings.
type Settings struct {
	// Table SecuritySettings.
	Require3WayHandshake           bool // drop TCP packets of connections whose handshake was not seen
	AntiSpoofing                   bool // drop packets whose source does not belong to the ingress interface
	ConnLimitPerSource             int  // concurrent connections per source address; 0 = unlimited
	NewConnLimitPerSourcePerMinute int  // new connections per source address per minute; 0 = unlimited
	// RecoverAfterCrash: for this long after an unclean start (a crash, SIGKILL or
	// power loss: no final snapshot), mid-stream TCP packets may pick up connections
	// the rules permit even with Require3WayHandshake; 0 = never.
	RecoverAfterCrash time.Duration

	// Table TrafficPolicy (its DefaultAction lives in Config.Policy.DefaultAction).
	CloseConnectionsOnRuleChange bool // a rule change closes live connections the new rules refuse

	// Table ConnTrack: idle timeouts per state (one setting per row of
	// conntrack.TimeoutDefs), table size, adaptive timeouts.
	Timeouts             conntrack.Timeouts
	MaxConnections       int // connection table size limit
	AdaptiveStartPercent int // of MaxConnections: timeouts start shrinking here; 0 disables
	AdaptiveEndPercent   int // of MaxConnections: timeouts reach zero here
	TombstoneCount       int // recently closed connections remembered to explain late packets

	// Table Logging: the debug log of dropped packets.
	LogDroppedPackets    bool            // log every dropped packet ("packets dropped for any reason")
	LogDropReasons       []reason.Reason // also log drops for these reasons when LogDroppedPackets is off
	DropLogRatePerSecond int             // drop-log lines per second; 0 = unlimited
	DropLogBurst         int             // lines allowed at once before the rate applies
}

// NetworkDropReasons are the drop reasons logged by default (LogDropReasons) while
// the full drop log is off, as Kerio has it by default: the reasons that mean the
// network or the configuration is wrong rather than that someone is being refused.
// An administrator needs to see them without asking for them, and they are rare
// unless something is broken:
//
//   - handshake_not_completed, handshake_wrong_direction: part of a conversation
//     takes another path around the firewall (story 1's switch), or the firewall
//     lost its state;
//   - state_expired: a timeout shorter than the applications' idle times (story 2's
//     keep-alives);
//   - out_of_window: segments the firewall never saw (lost upstream, asymmetric
//     paths, offloads), or window tracking that is wrong;
//   - table_full: MaxConnections is too small for the traffic (or a flood);
//   - anti_spoofing: an interface's Addresses/Networks miss a network that is
//     routed through it, which drops its legitimate traffic silently.
//
// Left out: rule drops (traffic_rule, default_rule: the rules doing their job, logged
// per rule with LogPackets), scans and malformed or crafted packets
// (invalid_tcp_flags, invalid_state, icmp_unrelated, malformed, bad_checksum,
// fragment, unsupported: noise on any Internet-facing interface), connection_limit
// (warning.log has it, once per source per minute) and rule_changed (warning.log
// names each connection a change closed).
func NetworkDropReasons() []reason.Reason {
	return []reason.Reason{reason.HandshakeNotCompleted, reason.HandshakeWrongDirection, reason.StateExpired,
		reason.OutOfWindow, reason.TableFull, reason.AntiSpoofing}
}

// DropLogged reports whether a drop for reason r goes to the debug log (before rate
// limiting).
func (s *Settings) DropLogged(r reason.Reason) bool {
	return s.LogDroppedPackets || slices.Contains(s.LogDropReasons, r)
}

// valueDef describes one setting of a file of type T: where it lives, its unit and
// bounds, and how to reach its field. Parsing, writing, defaults, "changed"
// summaries and the docs test all read these tables.
type valueDef[T any] struct {
	table, name string
	unit        string // "s" for durations; a word for counts; "" for switches and names
	min, max    int64
	doc         string
	field       func(*T) any // pointer to the field
}

// settingDef is a setting of winroute.cfg.
type settingDef = valueDef[Config]

const (
	tableSecurity = "SecuritySettings"
	tablePolicy   = "TrafficPolicy"
	tableConnTrak = "ConnTrack"
	tableLogging  = "Logging"
)

// tableOrder is the order tables are written in.
var tableOrder = []string{tableSecurity, tablePolicy, tableConnTrak, tableLogging}

const maxTimeout = 365 * 24 * 3600 // one year, in seconds

// timeoutSettings are the ConnTrack table's timeouts, one per row of conntrack's
// table of timeouts.
func timeoutSettings() []settingDef {
	var out []settingDef
	for _, td := range conntrack.TimeoutDefs() {
		out = append(out, settingDef{table: tableConnTrak, name: td.Name, unit: "s", min: 1, max: maxTimeout, doc: td.Conns,
			field: func(c *Config) any { return td.Field(&c.Settings.Timeouts) }})
	}
	return out
}

func sfield[T any](f func(*Settings) *T) func(*Config) any {
	return func(c *Config) any { return f(&c.Settings) }
}

// settingDefs are the settings in file order: the timeouts come first in the
// ConnTrack table.
var settingDefs = withTimeouts([]settingDef{
	{table: tableSecurity, name: "Require3WayHandshake", doc: "drop TCP packets of connections whose handshake was not seen",
		field: sfield(func(s *Settings) *bool { return &s.Require3WayHandshake })},
	{table: tableSecurity, name: "AntiSpoofing", doc: "drop packets whose source address does not belong to the ingress interface",
		field: sfield(func(s *Settings) *bool { return &s.AntiSpoofing })},
	{table: tableSecurity, name: "ConnLimitPerSource", unit: "connections", min: 0, max: 1 << 24, doc: "concurrent connections per source address (0 = unlimited)",
		field: sfield(func(s *Settings) *int { return &s.ConnLimitPerSource })},
	{table: tableSecurity, name: "NewConnLimitPerSourcePerMinute", unit: "connections/minute", min: 0, max: 1 << 24, doc: "new connections per source address per minute (0 = unlimited)",
		field: sfield(func(s *Settings) *int { return &s.NewConnLimitPerSourcePerMinute })},

	{table: tableSecurity, name: "RecoverAfterCrashSeconds", unit: "s", min: 0, max: 3600,
		doc:   "after an unclean start, mid-stream TCP packets may pick up connections the rules permit for this long, even with Require3WayHandshake (0 = never)",
		field: sfield(func(s *Settings) *time.Duration { return &s.RecoverAfterCrash })},

	{table: tablePolicy, name: "DefaultAction", doc: "action of the fixed last rule: Permit, Deny or Drop",
		field: func(c *Config) any { return &c.Policy.DefaultAction }},
	{table: tablePolicy, name: "CloseConnectionsOnRuleChange", doc: "when rules change, close live connections the new rules refuse",
		field: sfield(func(s *Settings) *bool { return &s.CloseConnectionsOnRuleChange })},

	{table: tableConnTrak, name: "MaxConnections", unit: "connections", min: 1, max: 1 << 26, doc: "connection table size limit",
		field: sfield(func(s *Settings) *int { return &s.MaxConnections })},
	{table: tableConnTrak, name: "AdaptiveStartPercent", unit: "percent", min: 0, max: 1000, doc: "table fill (% of MaxConnections) where timeouts start shrinking; 0 disables adaptive timeouts",
		field: sfield(func(s *Settings) *int { return &s.AdaptiveStartPercent })},
	{table: tableConnTrak, name: "AdaptiveEndPercent", unit: "percent", min: 1, max: 1000, doc: "table fill (% of MaxConnections) where timeouts reach zero",
		field: sfield(func(s *Settings) *int { return &s.AdaptiveEndPercent })},
	{table: tableConnTrak, name: "TombstoneCount", unit: "connections", min: 0, max: 1 << 24, doc: "recently closed or expired connections remembered to explain late packets",
		field: sfield(func(s *Settings) *int { return &s.TombstoneCount })},

	{table: tableLogging, name: "LogDroppedPackets", doc: `log every dropped packet (Kerio's "packets dropped for any reason")`,
		field: sfield(func(s *Settings) *bool { return &s.LogDroppedPackets })},
	{table: tableLogging, name: "LogDropReasons", doc: "comma-separated reason ids also logged when LogDroppedPackets is 0 (default: the reasons that mean the network or configuration is wrong; empty: none)",
		field: sfield(func(s *Settings) *[]reason.Reason { return &s.LogDropReasons })},
	{table: tableLogging, name: "DropLogRatePerSecond", unit: "lines/s", min: 0, max: 1_000_000, doc: "drop-log lines per second (0 = unlimited)",
		field: sfield(func(s *Settings) *int { return &s.DropLogRatePerSecond })},
	{table: tableLogging, name: "DropLogBurst", unit: "lines", min: 1, max: 1_000_000, doc: "drop-log lines allowed at once before the rate applies",
		field: sfield(func(s *Settings) *int { return &s.DropLogBurst })},
})

// withTimeouts inserts the timeout settings before the first other setting of the
// ConnTrack table.
func withTimeouts(defs []settingDef) []settingDef {
	i := slices.IndexFunc(defs, func(d settingDef) bool { return d.table == tableConnTrak })
	return slices.Concat(defs[:i], timeoutSettings(), defs[i:])
}

var settingByName = byName(settingDefs)

// parse sets the field of def in c from its text in the file.
func (def *valueDef[T]) parse(c *T, s string) error {
	switch p := def.field(c).(type) {
	case *string:
		*p = s
	case *bool:
		switch strings.TrimSpace(s) {
		case "0":
			*p = false
		case "1":
			*p = true
		default:
			return fmt.Errorf("want 0 or 1, got %q", s)
		}
	case *int:
		n, err := def.parseInt(s)
		if err != nil {
			return err
		}
		*p = int(n)
	case *time.Duration:
		n, err := def.parseInt(s)
		if err != nil {
			return err
		}
		*p = time.Duration(n) * time.Second
	case *policy.Action:
		a, ok := policy.ParseAction(strings.TrimSpace(s))
		if !ok {
			return fmt.Errorf("want Permit, Deny or Drop, got %q%s", s, suggest(strings.TrimSpace(s), []string{"Permit", "Deny", "Drop"}))
		}
		*p = a
	case *[]reason.Reason:
		rs, err := parseReasons(s)
		if err != nil {
			return err
		}
		*p = rs
	}
	return nil
}

func (def *valueDef[T]) parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		what := "a whole number"
		if def.unit == "s" {
			what = "a whole number of seconds"
		}
		return 0, fmt.Errorf("want %s, got %q", what, s)
	}
	if n < def.min || n > def.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, def.min, def.max)
	}
	return n, nil
}

func parseReasons(s string) ([]reason.Reason, error) {
	var out []reason.Reason
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ids []string
	for _, r := range reason.All() {
		ids = append(ids, r.String())
	}
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		r, ok := reason.Parse(id)
		if !ok || r == reason.None {
			return nil, fmt.Errorf("unknown reason %q%s", id, suggest(id, ids))
		}
		if slices.Contains(out, r) {
			return nil, fmt.Errorf("reason %q listed twice", id)
		}
		out = append(out, r)
	}
	return out, nil
}

// format writes the field of def in c as the file holds it.
func (def *valueDef[T]) format(c *T) string {
	switch p := def.field(c).(type) {
	case *string:
		return *p
	case *bool:
		if *p {
			return "1"
		}
		return "0"
	case *int:
		return strconv.Itoa(*p)
	case *time.Duration:
		return strconv.FormatInt(int64(*p/time.Second), 10)
	case *policy.Action:
		return p.String()
	case *[]reason.Reason:
		ids := make([]string, len(*p))
		for i, r := range *p {
			ids[i] = r.String()
		}
		return strings.Join(ids, ",")
	}
	panic("config: setting " + def.name + " has an unsupported type")
}

// SettingInfo documents one setting for help texts and docs.
type SettingInfo struct {
	Table, Name, Default, Unit, Doc string
}

// AllSettings lists every setting in file order with its default.
func AllSettings() []SettingInfo {
	d := Default()
	out := make([]SettingInfo, len(settingDefs))
	for i := range settingDefs {
		def := &settingDefs[i]
		out[i] = SettingInfo{Table: def.table, Name: def.name, Default: def.format(d), Unit: def.unit, Doc: def.doc}
	}
	return out
}

// Setting returns the value of the setting called name as the file writes it.
func (c *Config) Setting(name string) (string, bool) {
	def, ok := settingByName[name]
	if !ok {
		return "", false
	}
	return def.format(c), true
}

// SetSetting sets the setting called name from its file form, checking it as a file
// would be checked (the seam for a future admin API "set" command).
func (c *Config) SetSetting(name, value string) error {
	def, ok := settingByName[name]
	if !ok {
		return fmt.Errorf("unknown setting %q%s", name, suggest(name, settingNames()))
	}
	tmp := *c
	if err := def.parse(&tmp, value); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	*c = tmp
	return nil
}

// ChangedSettings returns "Name=value" for every setting that differs from Default().
func (c *Config) ChangedSettings() []string {
	d := Default()
	var out []string
	for i := range settingDefs {
		def := &settingDefs[i]
		if v := def.format(c); v != def.format(d) {
			out = append(out, def.name+"="+v)
		}
	}
	return out
}

func settingNames() []string {
	names := make([]string, len(settingDefs))
	for i := range settingDefs {
		names[i] = settingDefs[i].name
	}
	return names
}

// checkSettings reports combinations of settings that cannot work, and warns about
// values the two incidents of docs/config.md warn about.
func (c *Config) checkSettings(d *diag, where func(name string) pos) {
	s := &c.Settings
	if s.AdaptiveStartPercent > 0 && s.AdaptiveEndPercent <= s.AdaptiveStartPercent {
		d.errorf(where("AdaptiveEndPercent"), "AdaptiveEndPercent (%d) must be above AdaptiveStartPercent (%d)", s.AdaptiveEndPercent, s.AdaptiveStartPercent)
	}
	if s.Timeouts.TCPEstablished < rfc5382MinIdle {
		d.warnf(where("TcpEstablishedTimeout"), "TcpEstablishedTimeout %d s is below the 7440 s (2 h 4 min) of RFC 5382: idle connections kept alive by TCP keep-alives (first probe after 2 h, RFC 1122) will be forgotten and their next packets dropped", int64(s.Timeouts.TCPEstablished/time.Second))
	}
}

// rfc5382MinIdle is the shortest established-connection idle timeout RFC 5382
// (REQ-5) allows a NAT: 2 hours and 4 minutes.
const rfc5382MinIdle = 2*time.Hour + 4*time.Minute
