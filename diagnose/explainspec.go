package diagnose

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"keepstate/packet"
)

// Spec is one packet described in words, as `keepstate explain` takes it:
//
//	tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]
//	tcp [2001:db8::1]:41234 > [2001:db8::2]:443 flags . seq 100 ack 200 len 10
//	udp 10.1.0.2:5353 > 10.2.0.2:53 len 40
//	icmp 10.1.0.2 > 10.2.0.2 type 8 id 7 seq 1
//	icmp6 2001:db8::1 > 2001:db8::2 type 128
//
// Keywords after the addresses come in any order: flags (tcpdump letters S F R P
// U E W and "." or A for ACK, or names joined by commas: SYN,ACK), seq, ack, len
// (payload bytes), type, code, id, iface (the ingress interface; brackets around
// "iface NAME" are allowed). TCP defaults to flags S, ICMP to an echo request. An
// ICMP error type quotes a UDP datagram the destination sent to the source, port
// 33434 both ways, as a traceroute probe.
type Spec struct {
	Proto      packet.Proto
	Src, Dst   netip.AddrPort // ports are 0 for ICMP
	Flags      packet.TCPFlags
	Seq, Ack   uint32
	PayloadLen int
	ICMPType   uint8
	ICMPCode   uint8
	ICMPID     uint16
	ICMPSeq    uint16
	Iface      string // "" when not given
}

// maxSpecPayload bounds len: one full-size IPv4 packet.
const maxSpecPayload = 65000

// ParseSpec parses a packet description.
func ParseSpec(s string) (Spec, error) {
	f := strings.Fields(s)
	if len(f) < 4 || f[2] != ">" {
		return Spec{}, errors.New(`want "PROTO SRC > DST [flags F] [seq N] [ack N] [len N] [type N] [code N] [id N] [iface NAME]"`)
	}
	var sp Spec
	switch strings.ToLower(f[0]) {
	case "tcp":
		sp.Proto, sp.Flags = packet.ProtoTCP, packet.SYN
	case "udp":
		sp.Proto = packet.ProtoUDP
	case "icmp":
		sp.Proto, sp.ICMPType = packet.ProtoICMP, 8
	case "icmp6", "icmpv6":
		sp.Proto, sp.ICMPType = packet.ProtoICMPv6, 128
	default:
		return Spec{}, fmt.Errorf("protocol %q: want tcp, udp, icmp or icmp6", f[0])
	}
	hasPorts := sp.Proto == packet.ProtoTCP || sp.Proto == packet.ProtoUDP
	var err error
	if sp.Src, err = parseEndpoint(f[1], hasPorts); err != nil {
		return Spec{}, fmt.Errorf("source: %w", err)
	}
	if sp.Dst, err = parseEndpoint(f[3], hasPorts); err != nil {
		return Spec{}, fmt.Errorf("destination: %w", err)
	}
	if sp.Src.Addr().Is4() != sp.Dst.Addr().Is4() {
		return Spec{}, errors.New("source and destination are of different address families")
	}
	if sp.Proto == packet.ProtoICMP && !sp.Src.Addr().Is4() {
		return Spec{}, errors.New("icmp is IPv4: use icmp6 for IPv6 addresses")
	}
	if sp.Proto == packet.ProtoICMPv6 && sp.Src.Addr().Is4() {
		return Spec{}, errors.New("icmp6 needs IPv6 addresses")
	}
	if sp.Proto == packet.ProtoICMP || sp.Proto == packet.ProtoICMPv6 {
		sp.ICMPID, sp.ICMPSeq = 1, 1
	}
	rest := f[4:]
	for len(rest) > 0 {
		key := strings.TrimPrefix(rest[0], "[")
		if len(rest) < 2 {
			return Spec{}, fmt.Errorf("%q needs a value", key)
		}
		val := rest[1]
		if key != rest[0] || key == "iface" {
			val = strings.TrimRight(val, "]")
		}
		rest = rest[2:]
		if err := sp.set(key, val); err != nil {
			return Spec{}, err
		}
	}
	return sp, nil
}

func (sp *Spec) set(key, val string) error {
	isTCP := sp.Proto == packet.ProtoTCP
	isICMP := sp.Proto == packet.ProtoICMP || sp.Proto == packet.ProtoICMPv6
	num := func(bits int) (uint64, error) {
		n, err := strconv.ParseUint(val, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("%s %q: want a number of at most %d bits", key, val, bits)
		}
		return n, nil
	}
	onlyFor := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%s applies to %s only", key, what)
		}
		return nil
	}
	switch key {
	case "flags":
		if err := onlyFor(isTCP, "tcp"); err != nil {
			return err
		}
		fl, err := parseFlags(val)
		sp.Flags = fl
		return err
	case "seq", "ack":
		n, err := num(32)
		if err == nil && isICMP && key == "seq" {
			if n > 0xffff {
				return fmt.Errorf("icmp seq %d: want at most 65535", n)
			}
			sp.ICMPSeq = uint16(n)
			return nil
		}
		if err == nil {
			err = onlyFor(isTCP, "tcp")
		}
		if key == "seq" {
			sp.Seq = uint32(n)
		} else {
			sp.Ack = uint32(n)
		}
		return err
	case "len":
		n, err := num(32)
		if err == nil && n > maxSpecPayload {
			err = fmt.Errorf("len %d: at most %d", n, maxSpecPayload)
		}
		sp.PayloadLen = int(n)
		return err
	case "type", "code", "id":
		if err := onlyFor(isICMP, "icmp and icmp6"); err != nil {
			return err
		}
		bits := 8
		if key == "id" {
			bits = 16
		}
		n, err := num(bits)
		switch key {
		case "type":
			sp.ICMPType = uint8(n)
		case "code":
			sp.ICMPCode = uint8(n)
		default:
			sp.ICMPID = uint16(n)
		}
		return err
	case "iface":
		if val == "" {
			return errors.New("iface needs a name")
		}
		sp.Iface = val
		return nil
	}
	return fmt.Errorf("unknown keyword %q (known: flags, seq, ack, len, type, code, id, iface)", key)
}

// parseEndpoint parses "10.0.0.1:80", "[2001:db8::1]:80", or without a port
// "10.0.0.1", "2001:db8::1", "[2001:db8::1]".
func parseEndpoint(s string, withPort bool) (netip.AddrPort, error) {
	if withPort {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%q: want ADDRESS:PORT ([IPv6]:PORT)", s)
		}
		if ap.Addr().Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q: zones are not supported", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q: want an address without port or zone", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}

var flagNames = map[string]packet.TCPFlags{
	"SYN": packet.SYN, "ACK": packet.ACK, "FIN": packet.FIN, "RST": packet.RST,
	"PSH": packet.PSH, "URG": packet.URG, "ECE": packet.ECE, "CWR": packet.CWR,
}

var flagLetters = map[rune]packet.TCPFlags{
	'S': packet.SYN, 'A': packet.ACK, '.': packet.ACK, 'F': packet.FIN, 'R': packet.RST,
	'P': packet.PSH, 'U': packet.URG, 'E': packet.ECE, 'W': packet.CWR,
}

// parseFlags reads tcpdump letters ("S", "S.", "PA") or names ("SYN,ACK"); "none"
// is no flag at all.
func parseFlags(s string) (packet.TCPFlags, error) {
	if strings.EqualFold(s, "none") {
		return 0, nil
	}
	var f packet.TCPFlags
	if strings.ContainsAny(s, ",|") || flagNames[strings.ToUpper(s)] != 0 {
		for _, n := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' }) {
			v, ok := flagNames[strings.ToUpper(n)]
			if !ok {
				return 0, fmt.Errorf("flag %q: want SYN, ACK, FIN, RST, PSH, URG, ECE or CWR", n)
			}
			f |= v
		}
		return f, nil
	}
	for _, r := range s {
		v, ok := flagLetters[r]
		if !ok {
			return 0, fmt.Errorf("flags %q: want letters of S F R P U E W and . or A for ACK, or names such as SYN,ACK", s)
		}
		f |= v
	}
	return f, nil
}

// String writes the spec back in the form ParseSpec reads.
func (sp Spec) String() string {
	var b strings.Builder
	b.WriteString(protoName(sp.Proto))
	if sp.Proto == packet.ProtoICMPv6 {
		b.Reset()
		b.WriteString("icmp6")
	}
	fmt.Fprintf(&b, " %s > %s", endpoint(sp.Src, sp.Proto), endpoint(sp.Dst, sp.Proto))
	switch sp.Proto {
	case packet.ProtoTCP:
		fmt.Fprintf(&b, " flags %s", flagString(sp.Flags))
		if sp.Seq != 0 || sp.Ack != 0 {
			fmt.Fprintf(&b, " seq %d ack %d", sp.Seq, sp.Ack)
		}
	case packet.ProtoICMP, packet.ProtoICMPv6:
		fmt.Fprintf(&b, " type %d code %d", sp.ICMPType, sp.ICMPCode)
		if sp.isEcho() || sp.ICMPID != 1 || sp.ICMPSeq != 1 {
			fmt.Fprintf(&b, " id %d seq %d", sp.ICMPID, sp.ICMPSeq)
		}
	}
	if sp.PayloadLen > 0 {
		fmt.Fprintf(&b, " len %d", sp.PayloadLen)
	}
	if sp.Iface != "" {
		fmt.Fprintf(&b, " iface %s", sp.Iface)
	}
	return b.String()
}

// Build returns the packet as raw IP (packet.LinkRaw).
func (sp Spec) Build() []byte {
	payload := make([]byte, sp.PayloadLen)
	src, dst := sp.Src.Addr(), sp.Dst.Addr()
	switch sp.Proto {
	case packet.ProtoTCP:
		s := packet.TCPSpec{Src: sp.Src, Dst: sp.Dst, Seq: sp.Seq, Ack: sp.Ack, Flags: sp.Flags, Window: 64240, Payload: payload, DontFrag: true}
		if sp.Flags&packet.SYN != 0 {
			s.Options = packet.TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true}
		}
		return packet.AppendTCP(nil, s)
	case packet.ProtoUDP:
		return packet.AppendUDP(nil, packet.UDPSpec{Src: sp.Src, Dst: sp.Dst, Payload: payload})
	}
	if sp.isEcho() {
		reply := sp.ICMPType == 0 || sp.ICMPType == 129
		return packet.AppendICMPEcho(nil, packet.ICMPEchoSpec{Src: src, Dst: dst, Reply: reply, ID: sp.ICMPID, Seq: sp.ICMPSeq, Payload: payload})
	}
	// Any other type: an error (or message) about a datagram dst sent to src.
	probe := netip.AddrPortFrom(dst, 33434)
	quoted := packet.AppendUDP(nil, packet.UDPSpec{Src: probe, Dst: netip.AddrPortFrom(src, 33434)})
	return packet.AppendICMPErrorSpec(nil, packet.ICMPErrorSpec{Type: sp.ICMPType, Code: sp.ICMPCode, Src: src, Dst: dst, Quoted: quoted})
}

// isEcho reports whether an ICMP spec is an echo request or reply (code 0).
func (sp Spec) isEcho() bool {
	if sp.ICMPCode != 0 {
		return false
	}
	if sp.Proto == packet.ProtoICMPv6 {
		return sp.ICMPType == 128 || sp.ICMPType == 129
	}
	return sp.Proto == packet.ProtoICMP && (sp.ICMPType == 8 || sp.ICMPType == 0)
}
