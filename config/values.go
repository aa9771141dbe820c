package config

import (
	"fmt"
	"strconv"
	"strings"

	"keepstate/policy"
)

// Text forms of list fields that are not terms (terms are policy.ParseTerm's).
// Lists of addresses and names are separated by ";", lists of numbers by ",".

const listSep = ";"

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, listSep)
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// protocolNames are the protocol words of rules and services, in the order an error
// message lists them.
var protocolNames = []struct {
	name  string
	proto policy.Protocol
}{
	{"tcp", policy.ProtoTCP}, {"udp", policy.ProtoUDP}, {"tcp/udp", policy.ProtoTCPUDP},
	{"icmp", policy.ProtoICMP}, {"icmpv6", policy.ProtoICMPv6}, {"any", policy.ProtoAny},
}

func parseProtocol(s string) (policy.Protocol, error) {
	s = strings.TrimSpace(s)
	for _, pn := range protocolNames {
		if pn.name == s {
			return pn.proto, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		names := make([]string, len(protocolNames))
		for i, pn := range protocolNames {
			names[i] = pn.name
		}
		return 0, fmt.Errorf("unknown protocol %q: want %s or a protocol number 0-255%s", s, strings.Join(names, ", "), suggest(s, names))
	}
	return policy.Protocol(n), nil
}

func formatProtocol(p policy.Protocol) string {
	for _, pn := range protocolNames {
		if pn.proto == p {
			return pn.name
		}
	}
	return strconv.Itoa(int(p))
}

// parseCondition reads a service condition: "" (every port or type),
// "dport=80,443,8000-8080" for tcp, udp and tcp/udp, "type=8,0" for icmp and icmpv6.
func parseCondition(proto policy.Protocol, s string) (ports, types []policy.PortRange, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil, nil
	}
	key, val, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("bad condition %q: want dport=PORTS or type=TYPES", s)
	case key == "dport":
		if proto != policy.ProtoTCP && proto != policy.ProtoUDP && proto != policy.ProtoTCPUDP {
			return nil, nil, fmt.Errorf("condition dport= needs protocol tcp, udp or tcp/udp, not %s", formatProtocol(proto))
		}
		ports, err = parseRanges(val, 65535, "port")
		return ports, nil, err
	case key == "type":
		if proto != policy.ProtoICMP && proto != policy.ProtoICMPv6 {
			return nil, nil, fmt.Errorf("condition type= needs protocol icmp or icmpv6, not %s", formatProtocol(proto))
		}
		types, err = parseRanges(val, 255, "ICMP type")
		return nil, types, err
	}
	return nil, nil, fmt.Errorf("unknown condition %q%s: want dport or type", key, suggest(key, []string{"dport", "type"}))
}

func parseRanges(s string, limit int, what string) ([]policy.PortRange, error) {
	var out []policy.PortRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 0 || b > limit {
			return nil, fmt.Errorf("bad %s %q: want numbers 0-%d or ranges FIRST-LAST, separated by commas", what, part, limit)
		}
		if a > b {
			return nil, fmt.Errorf("%s range %q ends before it starts", what, part)
		}
		out = append(out, policy.PortRange{Lo: uint16(a), Hi: uint16(b)})
	}
	return out, nil
}

func formatCondition(s *policy.Service) string {
	switch {
	case len(s.Ports) > 0:
		return "dport=" + formatRanges(s.Ports)
	case len(s.ICMPTypes) > 0:
		return "type=" + formatRanges(s.ICMPTypes)
	}
	return ""
}

func formatRanges(rs []policy.PortRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(int(r.Lo))
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(int(r.Hi))
		}
	}
	return strings.Join(parts, ",")
}

func parseBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("want 0 or 1, got %q", s)
}

func formatBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ServiceForm gives a service's protocol and condition as winroute.cfg writes
// them ("tcp", "dport=80,443").
func ServiceForm(s *policy.Service) (protocol, condition string) {
	return formatProtocol(s.Protocol), formatCondition(s)
}

// SetServiceForm sets a service's protocol and condition from their
// winroute.cfg form, with the file's checks and messages.
func SetServiceForm(s *policy.Service, protocol, condition string) error {
	p, err := parseProtocol(protocol)
	if err != nil {
		return err
	}
	ports, types, err := parseCondition(p, condition)
	if err != nil {
		return err
	}
	s.Protocol, s.Ports, s.ICMPTypes = p, ports, types
	return nil
}
