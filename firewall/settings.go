package firewall

import (
	"keepstate/conntrack"
)

// Settings are the engine's own settings: what the pipeline needs besides the
// compiled rules. Package config produces them from winroute.cfg; programs that
// have no configuration file (bench, diagnostics, tests) start from
// DefaultSettings.
type Settings struct {
	// Conntrack configures the connection table. Its Shards and OnEnd are the
	// engine's (see Options) and are ignored here. Its AdaptiveStart and
	// AdaptiveEnd are connection counts: a change of MaxConns does not move them
	// (see Adaptive).
	Conntrack conntrack.Config
	// AntiSpoofing drops packets whose source does not belong to the interface
	// they arrived on.
	AntiSpoofing bool
	// CloseConnectionsOnRuleChange: Apply closes the tracked connections the new
	// rules would refuse.
	CloseConnectionsOnRuleChange bool
}

// Defaults of the settings whose Kerio Control default differs from the bare
// connection table's.
const (
	DefaultPerSourceConns = 600 // Kerio's ConnLimitPerSource
	DefaultPerSourceRate  = 600 // Kerio's NewConnLimitPerSourcePerMinute (per minute)
	// Adaptive timeouts start at 60 % and reach zero at 120 % of the table
	// limit: pf's adaptive.start and adaptive.end.
	DefaultAdaptiveStartPercent = 60
	DefaultAdaptiveEndPercent   = 120
)

// DefaultSettings returns the settings of the built-in configuration
// (config.Default): strict handshakes, anti-spoofing, Kerio's per-source limits,
// pf's adaptive timeouts and every timeout at its default.
func DefaultSettings() Settings {
	tc := conntrack.DefaultConfig()
	tc.PerSourceConns = DefaultPerSourceConns
	tc.PerSourceRate = DefaultPerSourceRate
	tc.AdaptiveStart, tc.AdaptiveEnd = Adaptive(tc.MaxConns, DefaultAdaptiveStartPercent, DefaultAdaptiveEndPercent)
	return Settings{Conntrack: tc, AntiSpoofing: true, CloseConnectionsOnRuleChange: true}
}

// Adaptive turns adaptive-timeout thresholds given in percent of the table limit
// maxConns into connection counts; 0, 0 (off) unless 0 < start < end.
func Adaptive(maxConns, startPercent, endPercent int) (start, end int) {
	if maxConns <= 0 || startPercent <= 0 || endPercent <= startPercent {
		return 0, 0
	}
	return maxConns * startPercent / 100, maxConns * endPercent / 100
}
