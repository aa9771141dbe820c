package logging

import (
	"net/netip"
	"strconv"
	"time"

	"keepstate/packet"
)

// Small appenders shared by the text and JSON formats. They write into a caller's
// buffer so that one pooled buffer serves a whole line.

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// appendStamp appends Kerio's "[23/Sep/2012 11:50:42]" timestamp. It is written by
// hand because time.Format with a layout string costs several times more and this
// runs for every emitted line.
func appendStamp(b []byte, t time.Time, loc *time.Location) []byte {
	t = t.In(loc)
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, '[')
	b = append2(b, day)
	b = append(b, '/')
	b = append(b, monthNames[month-1]...)
	b = append(b, '/')
	if year < 0 || year > 9999 {
		b = strconv.AppendInt(b, int64(year), 10)
	} else {
		b = append2(b, year/100)
		b = append2(b, year%100)
	}
	b = append(b, ' ')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	return append(b, ']')
}

// append2 appends a number 0..99 as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

func appendInt(b []byte, n int64) []byte   { return strconv.AppendInt(b, n, 10) }
func appendUint(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) }

// appendAddr writes an address, or "?" when the engine had none (a frame without an
// IP layer), so that a line never shows an empty field.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, '?')
	}
	return a.AppendTo(b)
}

// appendAddrPort writes 10.0.0.1:80 or [2001:db8::1]:443.
func appendAddrPort(b []byte, a netip.Addr, port uint16) []byte {
	if !a.IsValid() {
		b = append(b, "?:"...)
		return strconv.AppendUint(b, uint64(port), 10)
	}
	return netip.AddrPortFrom(a, port).AppendTo(b)
}

// appendSeconds writes a duration in seconds: whole seconds as an integer ("3600"),
// anything finer with up to three decimals ("0.25"), so that "idle 3600.4 s > 3600
// s" never reads as a tie.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d%time.Second == 0 {
		return strconv.AppendInt(b, int64(d/time.Second), 10)
	}
	ms := d.Round(time.Millisecond)
	if ms%time.Second == 0 { // rounded to a whole second: keep one decimal to show it is not exact
		return strconv.AppendFloat(b, d.Seconds(), 'f', 1, 64)
	}
	return strconv.AppendFloat(b, ms.Seconds(), 'f', -1, 64)
}

// flagOrder is the order Kerio Control lists TCP flags in. Its own examples show
// "ACK PSH", so ACK comes before PSH although PSH is the lower bit in the header.
var flagOrder = [...]struct {
	bit  packet.TCPFlags
	name string
}{
	{packet.FIN, "FIN"},
	{packet.SYN, "SYN"},
	{packet.RST, "RST"},
	{packet.ACK, "ACK"},
	{packet.PSH, "PSH"},
	{packet.URG, "URG"},
	{packet.ECE, "ECE"},
	{packet.CWR, "CWR"},
}

// appendFlagList appends " ACK PSH": each set flag preceded by a space. The debug
// log wraps it as "flags:[ ACK PSH ]", the filter log writes "flags: ACK PSH".
func appendFlagList(b []byte, f packet.TCPFlags) []byte {
	for _, fl := range flagOrder {
		if f&fl.bit != 0 {
			b = append(b, ' ')
			b = append(b, fl.name...)
		}
	}
	return b
}

// appendFlagWords appends the JSON form of the flags: "ACK PSH", nothing for none.
func appendFlagWords(b []byte, f packet.TCPFlags) []byte {
	start := len(b)
	b = appendFlagList(b, f)
	if len(b) > start { // drop the leading space
		copy(b[start:], b[start+1:])
		b = b[:len(b)-1]
	}
	return b
}

// hasPorts reports whether the packet carries a TCP or UDP header whose ports and
// fields were decoded: not a later fragment, which has no transport header.
func hasPorts(p *packet.Parsed) bool {
	return (p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP) && p.Frag != packet.LaterFragment
}

// hasICMP reports whether the packet carries a decoded ICMP or ICMPv6 header.
func hasICMP(p *packet.Parsed) bool {
	return (p.Proto == packet.ProtoICMP || p.Proto == packet.ProtoICMPv6) && p.Frag != packet.LaterFragment
}

// FlagWords gives TCP flags as the logs write them: "SYN ACK"; "" for none.
func FlagWords(f packet.TCPFlags) string { return string(appendFlagWords(nil, f)) }
