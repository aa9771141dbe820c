// Package config reads and writes keepstate's configuration: winroute.cfg, an XML
// file in the layout of Kerio Control's (tables of settings, lists of interfaces,
// address groups, services and traffic rules), and the export bundle around it.
//
// Reading is strict and positioned: every unknown name, bad value, dangling
// reference or duplicate is reported as "file:line: message", all of them at once,
// with the nearest known name for a typo. Writing is deterministic, so that
// export -> import -> export is byte for byte the same.
//
// The package knows nothing of packets. It is the adapter between the file and the
// engine: Compile gives the engine its policy.Ruleset and EngineSettings its
// firewall.Settings; the engine never sees the file model.
package config

import (
	"keepstate/conntrack"
	"keepstate/firewall"
	"keepstate/policy"
)

// Config is one winroute.cfg: the settings and the traffic policy.
type Config struct {
	Settings Settings
	Policy   policy.Model // DefaultAction is the TrafficPolicy table's DefaultAction

	warnings ErrorList
}

// Warnings are problems that do not stop the configuration from loading (a timeout
// shorter than TCP keep-alives, for example), positioned like errors.
func (c *Config) Warnings() ErrorList { return c.warnings }

// Compile compiles the policy; a Config returned by Parse or Load always compiles.
func (c *Config) Compile() (*policy.Ruleset, error) { return policy.Compile(&c.Policy) }

// Default returns the built-in configuration: one Internet-group interface that owns
// every address, a rule that permits every connection (so only connection tracking
// decides), a handful of common services to write rules with, and the default of
// every setting. Each call returns a new value.
func Default() *Config {
	return &Config{
		Settings: Settings{
			Require3WayHandshake:           true,
			AntiSpoofing:                   true,
			ConnLimitPerSource:             firewall.DefaultPerSourceConns,
			NewConnLimitPerSourcePerMinute: firewall.DefaultPerSourceRate,
			CloseConnectionsOnRuleChange:   true,

			Timeouts:             conntrack.DefaultTimeouts(),
			MaxConnections:       conntrack.DefaultMaxConns,
			AdaptiveStartPercent: firewall.DefaultAdaptiveStartPercent,
			AdaptiveEndPercent:   firewall.DefaultAdaptiveEndPercent,
			TombstoneCount:       conntrack.DefaultTombstoneCap,

			LogDroppedPackets:    false,
			LogDropReasons:       NetworkDropReasons(),
			DropLogRatePerSecond: 100,
			DropLogBurst:         200,
		},
		Policy: defaultPolicy(),
	}
}

func defaultPolicy() policy.Model {
	m := policy.PermitAll()
	m.Services = defaultServices()
	return m
}

func defaultServices() []policy.Service {
	tcp := func(id int, name string, ports ...uint16) policy.Service {
		s := policy.Service{ID: id, Name: name, Protocol: policy.ProtoTCP}
		for _, p := range ports {
			s.Ports = append(s.Ports, policy.PortRange{Lo: p, Hi: p})
		}
		return s
	}
	return []policy.Service{
		tcp(1, "HTTP", 80),
		tcp(2, "HTTPS", 443),
		tcp(3, "SSH", 22),
		{ID: 4, Name: "DNS", Protocol: policy.ProtoTCPUDP, Ports: []policy.PortRange{{Lo: 53, Hi: 53}}},
		{ID: 5, Name: "NTP", Protocol: policy.ProtoUDP, Ports: []policy.PortRange{{Lo: 123, Hi: 123}}},
		tcp(6, "SMTP", 25, 587),
		tcp(7, "Tomcat", 8009, 8080),
		tcp(8, "Oracle SQL*Net", 1521),
		{ID: 9, Name: "Ping", Protocol: policy.ProtoICMP, ICMPTypes: []policy.PortRange{{Lo: 8, Hi: 8}}},
		{ID: 10, Name: "Ping6", Protocol: policy.ProtoICMPv6, ICMPTypes: []policy.PortRange{{Lo: 128, Hi: 128}}},
		{ID: 11, Name: "Any", Protocol: policy.ProtoAny},
	}
}
