package config

import (
	"fmt"

	"keepstate/firewall"
)

// EngineSettings maps the settings of the file onto the engine's.
func (c *Config) EngineSettings() firewall.Settings {
	s := &c.Settings
	st := firewall.DefaultSettings()
	tc := &st.Conntrack
	tc.Strict = s.Require3WayHandshake
	tc.Timeouts = s.Timeouts
	tc.MaxConns = s.MaxConnections
	tc.AdaptiveStart, tc.AdaptiveEnd = firewall.Adaptive(s.MaxConnections, s.AdaptiveStartPercent, s.AdaptiveEndPercent)
	tc.PerSourceConns = s.ConnLimitPerSource
	tc.PerSourceRate = s.NewConnLimitPerSourcePerMinute
	tc.TombstoneCap = s.TombstoneCount
	if s.TombstoneCount == 0 {
		tc.TombstoneCap = -1 // 0 in the configuration means keep none
	}
	st.AntiSpoofing = s.AntiSpoofing
	st.CloseConnectionsOnRuleChange = s.CloseConnectionsOnRuleChange
	return st
}

// NewEngine builds an engine that runs c: its compiled rules and its settings.
func (c *Config) NewEngine(opts firewall.Options) (*firewall.Engine, error) {
	rs, err := c.Compile()
	if err != nil {
		return nil, fmt.Errorf("compile rules: %w", err)
	}
	return firewall.New(rs, c.EngineSettings(), opts)
}

// ApplyTo puts c in force on e (see Engine.Apply). A configuration that does not
// compile changes nothing.
func (c *Config) ApplyTo(e *firewall.Engine) (closed int, err error) {
	rs, err := c.Compile()
	if err != nil {
		return 0, fmt.Errorf("compile rules: %w", err)
	}
	return e.Apply(rs, c.EngineSettings())
}
