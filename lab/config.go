//go:build linux

package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"keepstate/config"
	"keepstate/policy"
	"keepstate/synth"
)

// Config returns the lab's configuration: the LAN (client) may open the echo, sink
// and bench services of the DMZ (server); a Deny rule refuses PortDeny with an RST;
// everything else falls to the default rule, Drop. Dropped packets are logged
// (LogDroppedPackets 1). settings override winroute.cfg variables by name, e.g.
// {"Require3WayHandshake": "0"}, and set a rule's state options as "RULE/OPTION",
// e.g. {"LAN to echo/IdleTimeout": "8"}, checked as a file would be.
func Config(settings map[string]string) (*config.Config, error) {
	c := config.Default()
	tcp := func(id int, name string, port int) policy.Service {
		return policy.Service{ID: id, Name: name, Protocol: policy.ProtoTCP, Ports: []policy.PortRange{{Lo: uint16(port), Hi: uint16(port)}}}
	}
	bench := tcp(4, "lab-bench", PortBench)
	bench.Protocol = policy.ProtoTCPUDP
	lan := []policy.Term{policy.PrefixTerm(ClientNet)}
	dmz := []policy.Term{policy.PrefixTerm(ServerNet)}
	c.Policy = policy.Model{
		Interfaces: []policy.Interface{
			{ID: 1, Name: "LAN", Device: LANDevice, Group: policy.Trusted,
				Addresses: []netip.Prefix{netip.PrefixFrom(FirewallLAN, 24)}, Description: "lab client network"},
			{ID: 2, Name: "DMZ", Device: DMZDevice, Group: policy.Other,
				Addresses: []netip.Prefix{netip.PrefixFrom(FirewallDMZ, 24)}, Description: "lab server network"},
		},
		Services: []policy.Service{
			tcp(1, "lab-echo", PortEcho),
			tcp(2, "lab-sink", PortSink),
			tcp(3, "lab-deny", PortDeny),
			bench,
		},
		Rules: []policy.Rule{
			{ID: 3, Name: "LAN to echo", Enabled: true, Source: lan, Destination: dmz,
				Services: []string{"lab-echo"}, Action: policy.Permit},
			{ID: 1, Name: "LAN to servers", Enabled: true, Source: lan, Destination: dmz,
				Services: []string{"lab-sink", "lab-bench"}, Action: policy.Permit},
			{ID: 2, Name: "Refused service", Enabled: true, Source: lan, Destination: dmz,
				Services: []string{"lab-deny"}, Action: policy.Deny},
		},
		DefaultAction: policy.Drop,
	}
	if err := c.SetSetting("LogDroppedPackets", "1"); err != nil {
		return nil, err
	}
	var rules []string
	for _, name := range sortedKeys(settings) {
		if strings.Contains(name, "/") {
			rules = append(rules, name)
			continue
		}
		if err := c.SetSetting(name, settings[name]); err != nil {
			return nil, fmt.Errorf("lab config: %s=%s: %w", name, settings[name], err)
		}
	}
	if len(rules) == 0 {
		return c, nil
	}
	// Rule options go through the checks of a file.
	text := config.Marshal(c)
	for _, name := range rules {
		rule, opt, _ := strings.Cut(name, "/")
		text = synth.SetRuleOption(text, rule, opt, settings[name])
	}
	return config.Parse("lab.cfg", text)
}

// WriteConfig writes the lab configuration with settings as dir/NAME.cfg (a lone
// winroute.cfg) and returns its path.
func WriteConfig(dir, name string, settings map[string]string) (string, error) {
	c, err := Config(settings)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".cfg")
	return path, os.WriteFile(path, config.Marshal(c), 0o600)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
