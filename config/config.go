// Package config reads and writes keepstate's configuration: winroute.cfg, an XML
// file in the layout of Kerio Control's (tables of settings, lists of interfaces,
// address groups, services and traffic rules), and the export bundle around it.
//
// Reading is strict and positioned: every unknown name, bad value, dangling
// reference or duplicate is reported as "file:line: message", all of them at once,
// with the nearest known name for a typo. Writing is deterministic, so that
// export -> import -> export is byte for byte the same.
//
// The package knows nothing of packets: the firewall engine compiles Config.Policy
// with policy.Compile and maps Settings onto connection tracking.
package config

import (
	"time"

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
			ConnLimitPerSource:             600,
			NewConnLimitPerSourcePerMinute: 600,
			CloseConnectionsOnRuleChange:   true,

			TCPSynSentTimeout:     120 * time.Second,
			TCPSynRecvTimeout:     60 * time.Second,
			TCPEstablishedTimeout: 86400 * time.Second,
			TCPFinWaitTimeout:     120 * time.Second,
			TCPCloseWaitTimeout:   60 * time.Second,
			TCPLastAckTimeout:     30 * time.Second,
			TCPTimeWaitTimeout:    120 * time.Second,
			TCPCloseTimeout:       10 * time.Second,
			TCPPickupTimeout:      300 * time.Second,
			UDPUnrepliedTimeout:   30 * time.Second,
			UDPRepliedTimeout:     120 * time.Second,
			ICMPTimeout:           30 * time.Second,
			OtherUnrepliedTimeout: 60 * time.Second,
			OtherRepliedTimeout:   600 * time.Second,
			MaxConnections:        262144,
			AdaptiveStartPercent:  60,
			AdaptiveEndPercent:    120,
			TombstoneCount:        65536,

			LogDroppedPackets:    false,
			DropLogRatePerSecond: 100,
			DropLogBurst:         200,
		},
		Policy: policy.Model{
			Interfaces: []policy.Interface{
				{ID: 1, Name: "Internet", Group: policy.Internet, Description: "catches every address; bind Device and add interfaces to use anti-spoofing"},
			},
			Services: defaultServices(),
			Rules: []policy.Rule{
				{ID: 1, Name: "Permit all connections", Enabled: true, Action: policy.Permit,
					Description: "built-in default: connection tracking alone decides"},
			},
			DefaultAction: policy.Deny,
		},
	}
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
