package logging

import (
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// The Append functions build one line, newline included, at the end of dst and
// return the extended slice. loc is the time zone of the timestamp (nil means UTC,
// which is what tests and replays of foreign captures want; the Logger passes its
// configured location, local time by default).

// AppendDrop appends the debug-log line of a dropped packet:
//
//	[23/Sep/2012 11:50:42] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:92, 10.2.0.2:8080 -> 10.1.0.2:27779, flags:[ ACK PSH ], seq:2673204299 ack:173509679, win:27, tcplen:52)
func AppendDrop(dst []byte, loc *time.Location, ev *PacketEvent) []byte {
	dst = appendStamp(dst, ev.Time, orUTC(loc))
	dst = append(dst, " {pktdrop} packet dropped: "...)
	dst = appendReasonText(dst, ev)
	dst = append(dst, " ("...)
	dst = appendDirection(dst, ev)
	if p := ev.P; p != nil {
		dst = appendDropPacket(dst, p)
	}
	return append(dst, ")\n"...)
}

// appendReasonText writes the words after "packet dropped: ": the reason's text,
// the rule for a traffic rule, and for an expired state the idle time against the
// timeout that ended it, the one fact an administrator needs to fix it.
func appendReasonText(b []byte, ev *PacketEvent) []byte {
	b = append(b, ev.Reason.Text()...)
	switch {
	case ev.Reason == reason.TrafficRule && ev.Rule != "":
		b = append(b, ": "...)
		b = appendOneLine(b, ev.Rule)
	case ev.Reason == reason.StateExpired && (ev.Idle != 0 || ev.Timeout != 0):
		b = append(b, " ("...)
		if ev.ConnState != "" {
			b = append(b, "state "...)
			b = appendOneLine(b, ev.ConnState)
			b = append(b, ", "...)
		}
		b = append(b, "idle "...)
		b = appendSeconds(b, ev.Idle)
		b = append(b, " s > "...)
		if ev.TimeoutName != "" {
			b = appendOneLine(b, ev.TimeoutName)
		} else {
			b = append(b, "timeout"...)
		}
		b = append(b, ' ')
		b = appendSeconds(b, ev.Timeout)
		return append(b, " s)"...)
	}
	if ev.ConnState != "" {
		b = append(b, " (state "...)
		b = appendOneLine(b, ev.ConnState)
		b = append(b, ')')
	}
	return b
}

// appendDirection writes "from DMZ" for ingress and "to LAN" for egress.
func appendDirection(b []byte, ev *PacketEvent) []byte {
	if ev.Outbound {
		b = append(b, "to "...)
	} else {
		b = append(b, "from "...)
	}
	return appendOneLine(b, ev.Iface)
}

// appendDropPacket writes the packet fields of a debug line, each preceded by ", ".
func appendDropPacket(b []byte, p *packet.Parsed) []byte {
	if p.IPVersion == 0 {
		return appendNonIP(b, p)
	}
	b = appendProtoLen(b, p)
	b = append(b, ", "...)
	switch {
	case hasPorts(p):
		b = appendAddrPort(b, p.Src, p.SrcPort)
		b = append(b, " -> "...)
		b = appendAddrPort(b, p.Dst, p.DstPort)
		if p.Proto == packet.ProtoTCP {
			b = append(b, ", flags:["...)
			b = appendFlagList(b, p.TCPFlags)
			b = append(b, " ]"...)
			b = appendTCPNumbers(b, p)
		} else {
			b = append(b, ", udplen:"...)
			b = appendInt(b, int64(p.PayloadLen))
		}
	case hasICMP(p):
		b = appendAddrs(b, p)
		b = appendICMP(b, p)
	default:
		b = appendAddrs(b, p)
		b = appendFragment(b, p)
	}
	return b
}

// AppendFilter appends the filter-log line of a packet that matched a rule with
// "log packets":
//
//	[16/Apr/2013 10:51:00] PERMIT 'Local traffic' packet to LAN, proto:TCP, len:47, ip/port:195.39.55.4:41272 -> 192.168.1.11:3663, flags: ACK PSH, seq:1099972190 ack:3795090926, win:64036, tcplen:7
//
// An empty Action is written PERMIT for an accepted packet and DROP otherwise.
func AppendFilter(dst []byte, loc *time.Location, ev *PacketEvent) []byte {
	dst = appendStamp(dst, ev.Time, orUTC(loc))
	dst = append(dst, ' ')
	dst = appendOneLine(dst, filterAction(ev))
	dst = append(dst, " '"...)
	dst = appendOneLine(dst, ev.Rule)
	dst = append(dst, "' packet "...)
	dst = appendDirection(dst, ev)
	if p := ev.P; p != nil {
		dst = appendFilterPacket(dst, p)
	}
	return append(dst, '\n')
}

func filterAction(ev *PacketEvent) string {
	switch {
	case ev.Action != "":
		return ev.Action
	case ev.Reason == reason.None:
		return "PERMIT"
	}
	return "DROP"
}

// appendFilterPacket writes the packet fields of a filter line, which differ from
// the debug line's in small ways Kerio users know: "ip/port:" before the
// addresses and "flags: ACK PSH" without brackets.
func appendFilterPacket(b []byte, p *packet.Parsed) []byte {
	if p.IPVersion == 0 {
		return appendNonIP(b, p)
	}
	b = appendProtoLen(b, p)
	switch {
	case hasPorts(p):
		b = append(b, ", ip/port:"...)
		b = appendAddrPort(b, p.Src, p.SrcPort)
		b = append(b, " -> "...)
		b = appendAddrPort(b, p.Dst, p.DstPort)
		if p.Proto == packet.ProtoTCP {
			b = append(b, ", flags:"...)
			b = appendFlagList(b, p.TCPFlags)
			b = appendTCPNumbers(b, p)
		} else {
			b = append(b, ", udplen:"...)
			b = appendInt(b, int64(p.PayloadLen))
		}
	case hasICMP(p):
		b = append(b, ", ip:"...)
		b = appendAddrs(b, p)
		b = appendICMP(b, p)
	default:
		b = append(b, ", ip:"...)
		b = appendAddrs(b, p)
		b = appendFragment(b, p)
	}
	return b
}

// appendNonIP describes a frame without an IP layer (ARP, a truncated header):
// its EtherType and captured length are all there is.
func appendNonIP(b []byte, p *packet.Parsed) []byte {
	b = append(b, ", ethertype:0x"...)
	const hex = "0123456789abcdef"
	e := p.EtherType
	b = append(b, hex[e>>12], hex[e>>8&0xf], hex[e>>4&0xf], hex[e&0xf])
	b = append(b, ", framelen:"...)
	return appendInt(b, int64(p.Length))
}

func appendProtoLen(b []byte, p *packet.Parsed) []byte {
	b = append(b, ", proto:"...)
	b = append(b, p.Proto.String()...)
	b = append(b, ", len:"...)
	return appendInt(b, int64(p.IPLen))
}

func appendAddrs(b []byte, p *packet.Parsed) []byte {
	b = appendAddr(b, p.Src)
	b = append(b, " -> "...)
	return appendAddr(b, p.Dst)
}

func appendTCPNumbers(b []byte, p *packet.Parsed) []byte {
	b = append(b, ", seq:"...)
	b = appendUint(b, uint64(p.Seq))
	b = append(b, " ack:"...)
	b = appendUint(b, uint64(p.Ack))
	b = append(b, ", win:"...)
	b = appendUint(b, uint64(p.Window))
	b = append(b, ", tcplen:"...)
	return appendInt(b, int64(p.PayloadLen))
}

// appendICMP writes ", type:8 code:0 id:12380 seq:1 ttl:64"; id and seq only for
// echo messages, where they mean something.
func appendICMP(b []byte, p *packet.Parsed) []byte {
	b = append(b, ", type:"...)
	b = appendUint(b, uint64(p.ICMPType))
	b = append(b, " code:"...)
	b = appendUint(b, uint64(p.ICMPCode))
	if p.IsEchoRequest() || p.IsEchoReply() {
		b = append(b, " id:"...)
		b = appendUint(b, uint64(p.ICMPID))
		b = append(b, " seq:"...)
		b = appendUint(b, uint64(p.ICMPSeq))
	}
	b = append(b, " ttl:"...)
	return appendUint(b, uint64(p.TTL))
}

// appendFragment says where a later fragment sits; it has no ports to show.
func appendFragment(b []byte, p *packet.Parsed) []byte {
	if p.Frag != packet.LaterFragment {
		return b
	}
	b = append(b, ", frag offset:"...)
	return appendUint(b, uint64(p.FragOffset))
}

// AppendConnection appends the connection-log line of a connection that ended:
//
//	[16/Apr/2013 10:53:01] [ID] 613181 [Rule] NAT [Service] HTTP [Connection] TCP 192.168.1.140:1193 > 1.2.3.4:80 [Duration] 121 sec [Bytes] 1575/1290/2865 [Packets] 5/9/14
//
// The timestamp is the end of the connection. Empty Rule or Service fields are
// left out rather than written as empty brackets.
func AppendConnection(dst []byte, loc *time.Location, ev *ConnEvent) []byte {
	dst = appendStamp(dst, ev.End, orUTC(loc))
	dst = append(dst, " [ID] "...)
	dst = appendUint(dst, ev.ID)
	if ev.Rule != "" {
		dst = append(dst, " [Rule] "...)
		dst = appendOneLine(dst, ev.Rule)
	}
	if ev.Service != "" {
		dst = append(dst, " [Service] "...)
		dst = appendOneLine(dst, ev.Service)
	}
	dst = append(dst, " [Connection] "...)
	dst = appendOneLine(dst, ev.Proto)
	dst = append(dst, ' ')
	dst = appendAddrPort(dst, ev.Src.Addr(), ev.Src.Port())
	dst = append(dst, " > "...)
	dst = appendAddrPort(dst, ev.Dst.Addr(), ev.Dst.Port())
	dst = append(dst, " [Duration] "...)
	dst = appendInt(dst, int64(connDuration(ev)/time.Second))
	dst = append(dst, " sec [Bytes] "...)
	dst = appendTriple(dst, ev.Bytes)
	dst = append(dst, " [Packets] "...)
	dst = appendTriple(dst, ev.Packets)
	return append(dst, '\n')
}

// connDuration is End - Start, never negative (a clock step must not print "-3 sec").
func connDuration(ev *ConnEvent) time.Duration {
	if ev.Start.IsZero() || ev.End.Before(ev.Start) {
		return 0
	}
	return ev.End.Sub(ev.Start)
}

// appendTriple writes Kerio's "sent/received/total".
func appendTriple(b []byte, v [2]uint64) []byte {
	b = appendUint(b, v[0])
	b = append(b, '/')
	b = appendUint(b, v[1])
	b = append(b, '/')
	return appendUint(b, v[0]+v[1])
}

// AppendWarning appends a warning-log line: the timestamp and the message.
func AppendWarning(dst []byte, loc *time.Location, ev *WarningEvent) []byte {
	return AppendMessage(dst, loc, ev.Time, ev.Message)
}

// AppendMessage appends "[timestamp] msg", the shape of warning and error lines.
// Line breaks inside msg are replaced by spaces so that one event stays one line.
func AppendMessage(dst []byte, loc *time.Location, t time.Time, msg string) []byte {
	dst = appendStamp(dst, t, orUTC(loc))
	dst = append(dst, ' ')
	dst = appendOneLine(dst, msg)
	return append(dst, '\n')
}

func appendOneLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
