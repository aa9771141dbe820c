package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Term syntax, shared by rule sources/destinations and address-group values:
//
//	any | host:ADDR | prefix:ADDR/BITS | range:ADDR-ADDR | group:NAME | iface:NAME | ifgroup:GROUP
//
// Several terms are joined with ";".

// TermSeparator joins the terms of one rule field.
const TermSeparator = ";"

// ParseTerm parses one term. Addresses are strict: no zones, no IPv4-mapped IPv6,
// no host bits in a prefix, a range whose ends share a family and are ordered.
func ParseTerm(s string) (Term, error) {
	if s == "any" {
		return Term{Kind: TermAny}, nil
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return Term{}, fmt.Errorf("bad term %q: want any or one of host, prefix, range, group, iface, ifgroup followed by a colon and a value", s)
	}
	switch kind {
	case "host":
		a, err := ParseAddr(val)
		if err != nil {
			return Term{}, err
		}
		return Host(a), nil
	case "prefix":
		p, err := ParsePrefix(val)
		if err != nil {
			return Term{}, err
		}
		return PrefixTerm(p), nil
	case "range":
		lo, hi, ok := strings.Cut(val, "-")
		if !ok {
			return Term{}, fmt.Errorf("bad range %q: want FIRST-LAST", val)
		}
		from, err := ParseAddr(lo)
		if err != nil {
			return Term{}, err
		}
		to, err := ParseAddr(hi)
		if err != nil {
			return Term{}, err
		}
		t := Range(from, to)
		return t, t.checkRange()
	case "group", "iface":
		if err := CheckName(val); err != nil {
			return Term{}, err
		}
		if kind == "group" {
			return GroupRef(val), nil
		}
		return Iface(val), nil
	case "ifgroup":
		g, ok := ParseIfaceGroup(val)
		if !ok {
			return Term{}, fmt.Errorf("unknown interface group %q (want one of %s)", val, strings.Join(IfaceGroupNames(), ", "))
		}
		return IfGroup(g), nil
	}
	return Term{}, fmt.Errorf("unknown term kind %q: want host, prefix, range, group, iface or ifgroup", kind)
}

func (t Term) checkRange() error {
	if t.From.Is4() != t.To.Is4() {
		return fmt.Errorf("range %s-%s mixes IPv4 and IPv6", t.From, t.To)
	}
	if t.To.Less(t.From) {
		return fmt.Errorf("range %s-%s ends before it starts", t.From, t.To)
	}
	return nil
}

// FormatTerm writes t in the syntax ParseTerm reads.
func FormatTerm(t Term) string {
	switch t.Kind {
	case TermAny:
		return "any"
	case TermHost:
		return "host:" + t.Prefix.Addr().String()
	case TermPrefix:
		return "prefix:" + t.Prefix.String()
	case TermRange:
		return "range:" + t.From.String() + "-" + t.To.String()
	case TermAddressGroup:
		return "group:" + t.Name
	case TermInterface:
		return "iface:" + t.Name
	case TermInterfaceGroup:
		return "ifgroup:" + t.Group.String()
	}
	return "invalid:" + strconv.Itoa(int(t.Kind))
}

// FormatTerms joins terms with ";"; an empty list is "any".
func FormatTerms(ts []Term) string {
	if len(ts) == 0 {
		return "any"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = FormatTerm(t)
	}
	return strings.Join(parts, TermSeparator)
}

// ParseAddr parses an IP address without zone; IPv4-mapped IPv6 is refused because
// the matcher compares IPv4 packets with IPv4 terms only.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("bad address %q: zones are not allowed", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("bad address %q: write the IPv4 form %s", s, a.Unmap())
	}
	return a, nil
}

// ParsePrefix parses a network prefix that must have no host bits set.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := ParseInterfacePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("prefix %q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// ParseInterfacePrefix parses an address with its prefix length, host bits allowed
// (10.2.0.1/24: the firewall's address and the network it implies).
func ParseInterfacePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: want ADDRESS/BITS", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: write IPv4 prefixes in IPv4 form", s)
	}
	return p, nil
}

// CheckName reports whether s can name an interface, group, service or rule: not
// empty, no surrounding spaces, no control characters and no ";" (the separator of
// lists of names).
func CheckName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("name %q has leading or trailing spaces", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ';' {
			return fmt.Errorf("name %q contains %q", s, r)
		}
	}
	return nil
}
