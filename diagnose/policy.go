package diagnose

import (
	"keepstate/firewall"
	"keepstate/policy"
)

// Policy is what the diagnostics build their engines from: compiled rules and the
// engine's settings, as a configuration file gives them (config.Config's Compile
// and EngineSettings) or as a program sets them without one.
type Policy struct {
	Rules    *policy.Ruleset
	Settings firewall.Settings
}

// DefaultPolicy is the built-in configuration's: every connection permitted, so
// that connection tracking alone decides, with the default settings.
func DefaultPolicy() *Policy {
	m := policy.PermitAll()
	rs, err := policy.Compile(&m)
	if err != nil {
		panic("diagnose: the built-in policy does not compile: " + err.Error())
	}
	return &Policy{Rules: rs, Settings: firewall.DefaultSettings()}
}

// engine builds a fresh engine, with no connection tracked yet, from pol.
func (pol *Policy) engine() (*firewall.Engine, error) {
	return firewall.New(pol.Rules, pol.Settings, firewall.Options{})
}
