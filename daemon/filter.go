package daemon

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"keepstate/conntrack"
	"keepstate/packet"
)

// Filter selects connections for `conntrack list` and `conntrack flush`. It is
// written as words, key then value: "src 10.1.0.2 dport 8080", or key=value.
//
//	src ADDR|PREFIX    original source       sport PORT|LO-HI   original source port
//	dst ADDR|PREFIX    original destination  dport PORT|LO-HI   original destination port
//	host ADDR|PREFIX   either side           port PORT|LO-HI    either port
//	proto tcp|udp|icmp|icmpv6|NUMBER         state NAME (ESTABLISHED, TIME_WAIT, UDP_REPLIED, ...)
//	id ID                                    rule ID (the rule that admitted it, by its Id)
//
// Different keys must all match; a key given several times matches any of its
// values ("dport 80 dport 443"). No words: every connection.
type Filter struct {
	words []string
	keys  []filterKey
}

type filterKey struct {
	name   string
	values []func(*conntrack.ConnInfo) bool
}

// MaxFilterWords bounds a filter; a longer one is refused.
const MaxFilterWords = 64

// String gives back the filter's words, for log lines.
func (f Filter) String() string {
	if len(f.words) == 0 {
		return "all"
	}
	return strings.Join(f.words, " ")
}

// ParseFilter reads filter words.
func ParseFilter(words []string) (Filter, error) {
	var f Filter
	if len(words) > MaxFilterWords {
		return f, fmt.Errorf("filter: %d words, at most %d", len(words), MaxFilterWords)
	}
	for i := 0; i < len(words); i++ {
		key, val, ok := strings.Cut(words[i], "=")
		if !ok {
			if i+1 >= len(words) {
				return Filter{}, fmt.Errorf("filter: %q needs a value", key)
			}
			i++
			val = words[i]
		}
		key = strings.ToLower(key)
		m, err := filterTerm(key, val)
		if err != nil {
			return Filter{}, fmt.Errorf("filter: %s %q: %w", key, val, err)
		}
		f.add(key, m)
	}
	f.words = words
	return f, nil
}

func (f *Filter) add(key string, m func(*conntrack.ConnInfo) bool) {
	for i := range f.keys {
		if f.keys[i].name == key {
			f.keys[i].values = append(f.keys[i].values, m)
			return
		}
	}
	f.keys = append(f.keys, filterKey{name: key, values: []func(*conntrack.ConnInfo) bool{m}})
}

// Match reports whether ci passes the filter.
func (f Filter) Match(ci *conntrack.ConnInfo) bool {
	for _, k := range f.keys {
		hit := false
		for _, m := range k.values {
			if m(ci) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func filterTerm(key, val string) (func(*conntrack.ConnInfo) bool, error) {
	switch key {
	case "src", "dst", "host":
		p, err := parsePrefix(val)
		if err != nil {
			return nil, err
		}
		switch key {
		case "src":
			return func(ci *conntrack.ConnInfo) bool { return p.Contains(ci.Src) }, nil
		case "dst":
			return func(ci *conntrack.ConnInfo) bool { return p.Contains(ci.Dst) }, nil
		}
		return func(ci *conntrack.ConnInfo) bool { return p.Contains(ci.Src) || p.Contains(ci.Dst) }, nil
	case "sport", "dport", "port":
		lo, hi, err := parsePortRange(val)
		if err != nil {
			return nil, err
		}
		in := func(p uint16) bool { return p >= lo && p <= hi }
		ported := func(ci *conntrack.ConnInfo) bool {
			return ci.Proto == packet.ProtoTCP || ci.Proto == packet.ProtoUDP
		}
		switch key {
		case "sport":
			return func(ci *conntrack.ConnInfo) bool { return ported(ci) && in(ci.SrcPort) }, nil
		case "dport":
			return func(ci *conntrack.ConnInfo) bool { return ported(ci) && in(ci.DstPort) }, nil
		}
		return func(ci *conntrack.ConnInfo) bool { return ported(ci) && (in(ci.SrcPort) || in(ci.DstPort)) }, nil
	case "proto":
		pr, err := parseProto(val)
		if err != nil {
			return nil, err
		}
		return func(ci *conntrack.ConnInfo) bool { return ci.Proto == pr }, nil
	case "state":
		st, err := parseState(val)
		if err != nil {
			return nil, err
		}
		return func(ci *conntrack.ConnInfo) bool { return ci.State == st }, nil
	case "id":
		id, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return nil, err
		}
		return func(ci *conntrack.ConnInfo) bool { return ci.ID == id }, nil
	case "rule":
		id, err := strconv.ParseUint(val, 10, 32)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("want a rule Id (a number from 1)")
		}
		return func(ci *conntrack.ConnInfo) bool { return ci.Meta.Rule == uint32(id) }, nil
	}
	return nil, fmt.Errorf("unknown key (want src, dst, host, sport, dport, port, proto, state, id or rule)")
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() {
			return p, fmt.Errorf("use the IPv4 form")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("not a port (0-65535)")
	}
	if !isRange {
		return uint16(l), uint16(l), nil
	}
	h, err := strconv.ParseUint(b, 10, 16)
	if err != nil || h < l {
		return 0, 0, fmt.Errorf("not a port range LO-HI")
	}
	return uint16(l), uint16(h), nil
}

func parseProto(s string) (packet.Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return packet.ProtoTCP, nil
	case "udp":
		return packet.ProtoUDP, nil
	case "icmp":
		return packet.ProtoICMP, nil
	case "icmpv6", "ipv6-icmp":
		return packet.ProtoICMPv6, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("want tcp, udp, icmp, icmpv6 or a protocol number")
	}
	return packet.Proto(n), nil
}

func parseState(s string) (conntrack.State, error) {
	want := strings.ToUpper(s)
	var names []string
	for st := conntrack.StateNone + 1; st.String() != "INVALID"; st++ {
		if st.String() == want {
			return st, nil
		}
		names = append(names, st.String())
	}
	return 0, fmt.Errorf("unknown state (want one of %s)", strings.Join(names, ", "))
}
