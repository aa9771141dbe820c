package logging

import (
	"time"
	"unicode/utf8"

	"keepstate/packet"
	"keepstate/reason"
)

// JSON lines: one object per line with stable snake_case names, so that
// `jq 'select(.reason == "state_expired")'` works on every log. They are appended by
// hand rather than through encoding/json: field order stays fixed, fields that do not
// apply are left out, and the hot path does not pay for reflection.

// jsonLine appends one JSON object. Each field method writes the separating comma
// itself, deciding from the byte before it.
type jsonLine struct{ b []byte }

func (j *jsonLine) key(k string) {
	if c := j.b[len(j.b)-1]; c != '{' {
		j.b = append(j.b, ',')
	}
	j.b = append(j.b, '"')
	j.b = append(j.b, k...)
	j.b = append(j.b, '"', ':')
}

func (j *jsonLine) str(k, v string) {
	j.key(k)
	j.b = appendJSONString(j.b, v)
}

// strIf writes the field only when v is not empty.
func (j *jsonLine) strIf(k, v string) {
	if v != "" {
		j.str(k, v)
	}
}

func (j *jsonLine) uint(k string, v uint64) {
	j.key(k)
	j.b = appendUint(j.b, v)
}

func (j *jsonLine) int(k string, v int64) {
	j.key(k)
	j.b = appendInt(j.b, v)
}

func (j *jsonLine) seconds(k string, d time.Duration) {
	j.key(k)
	j.b = appendSeconds(j.b, d)
}

func (j *jsonLine) time(k string, t time.Time, loc *time.Location) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = t.In(loc).AppendFormat(j.b, time.RFC3339Nano)
	j.b = append(j.b, '"')
}

// beginJSON opens the object with the fields every line has: time and log name.
func beginJSON(dst []byte, t time.Time, loc *time.Location, log string) jsonLine {
	j := jsonLine{b: append(dst, '{')}
	j.time("time", t, orUTC(loc))
	j.str("log", log)
	return j
}

func (j *jsonLine) end() []byte { return append(j.b, '}', '\n') }

// AppendDropJSON appends the JSON line of a dropped packet (log "debug", event
// "drop").
func AppendDropJSON(dst []byte, loc *time.Location, ev *PacketEvent) []byte {
	j := beginJSON(dst, ev.Time, loc, "debug")
	j.str("event", "drop")
	j.str("reason", ev.Reason.String())
	j.str("reason_text", ev.Reason.Text())
	j.strIf("rule", ev.Rule)
	j.packetEvent(ev)
	if ev.Reason == reason.StateExpired || ev.Idle != 0 || ev.Timeout != 0 {
		j.seconds("idle_s", ev.Idle)
		j.seconds("timeout_s", ev.Timeout)
		j.strIf("timeout_name", ev.TimeoutName)
	}
	return j.end()
}

// AppendFilterJSON appends the JSON line of a packet logged by a rule (log
// "filter").
func AppendFilterJSON(dst []byte, loc *time.Location, ev *PacketEvent) []byte {
	j := beginJSON(dst, ev.Time, loc, "filter")
	j.str("action", filterAction(ev))
	j.str("rule", ev.Rule)
	if ev.Reason != reason.None {
		j.str("reason", ev.Reason.String())
	}
	j.packetEvent(ev)
	return j.end()
}

// packetEvent writes the interface, direction, connection state and packet fields.
func (j *jsonLine) packetEvent(ev *PacketEvent) {
	j.str("iface", ev.Iface)
	if ev.Outbound {
		j.str("direction", "out")
	} else {
		j.str("direction", "in")
	}
	j.strIf("conn_state", ev.ConnState)
	if ev.P != nil {
		j.packet(ev.P)
	}
}

func (j *jsonLine) packet(p *packet.Parsed) {
	if p.IPVersion == 0 {
		j.uint("ethertype", uint64(p.EtherType))
		j.int("frame_len", int64(p.Length))
		return
	}
	j.uint("ip_version", uint64(p.IPVersion))
	j.str("proto", p.Proto.String())
	j.key("src")
	j.b = append(j.b, '"')
	j.b = appendAddr(j.b, p.Src)
	j.b = append(j.b, '"')
	j.key("dst")
	j.b = append(j.b, '"')
	j.b = appendAddr(j.b, p.Dst)
	j.b = append(j.b, '"')
	j.int("len", int64(p.IPLen))
	j.uint("ttl", uint64(p.TTL))
	switch {
	case hasPorts(p):
		j.uint("sport", uint64(p.SrcPort))
		j.uint("dport", uint64(p.DstPort))
		if p.Proto == packet.ProtoTCP {
			j.key("flags")
			j.b = append(j.b, '"')
			j.b = appendFlagWords(j.b, p.TCPFlags)
			j.b = append(j.b, '"')
			j.uint("seq", uint64(p.Seq))
			j.uint("ack", uint64(p.Ack))
			j.uint("win", uint64(p.Window))
		}
		j.int("payload_len", int64(p.PayloadLen))
	case hasICMP(p):
		j.uint("icmp_type", uint64(p.ICMPType))
		j.uint("icmp_code", uint64(p.ICMPCode))
		if p.IsEchoRequest() || p.IsEchoReply() {
			j.uint("icmp_id", uint64(p.ICMPID))
			j.uint("icmp_seq", uint64(p.ICMPSeq))
		}
	}
	if p.Frag == packet.LaterFragment {
		j.uint("frag_offset", uint64(p.FragOffset))
	}
}

// AppendConnectionJSON appends the JSON line of a connection that ended (log
// "connection"). Unlike the text line it also carries the start time and the cause.
func AppendConnectionJSON(dst []byte, loc *time.Location, ev *ConnEvent) []byte {
	loc = orUTC(loc)
	j := beginJSON(dst, ev.End, loc, "connection")
	j.uint("id", ev.ID)
	j.strIf("rule", ev.Rule)
	j.strIf("service", ev.Service)
	j.str("proto", ev.Proto)
	j.key("src")
	j.b = append(j.b, '"')
	j.b = appendAddr(j.b, ev.Src.Addr())
	j.b = append(j.b, '"')
	j.uint("sport", uint64(ev.Src.Port()))
	j.key("dst")
	j.b = append(j.b, '"')
	j.b = appendAddr(j.b, ev.Dst.Addr())
	j.b = append(j.b, '"')
	j.uint("dport", uint64(ev.Dst.Port()))
	if !ev.Start.IsZero() {
		j.time("start", ev.Start, loc)
	}
	j.seconds("duration_s", connDuration(ev))
	j.uint("bytes_orig", ev.Bytes[0])
	j.uint("bytes_reply", ev.Bytes[1])
	j.uint("bytes_total", ev.Bytes[0]+ev.Bytes[1])
	j.uint("packets_orig", ev.Packets[0])
	j.uint("packets_reply", ev.Packets[1])
	j.uint("packets_total", ev.Packets[0]+ev.Packets[1])
	j.strIf("cause", ev.Cause)
	return j.end()
}

// AppendWarningJSON appends the JSON line of a warning (log "warning").
func AppendWarningJSON(dst []byte, loc *time.Location, ev *WarningEvent) []byte {
	return appendEventJSON(dst, loc, "warning", ev)
}

// appendEventJSON writes a WarningEvent as a line of the named log.
func appendEventJSON(dst []byte, loc *time.Location, log string, ev *WarningEvent) []byte {
	j := beginJSON(dst, ev.Time, loc, log)
	j.strIf("kind", ev.Kind)
	j.str("message", ev.Message)
	if ev.Addr.IsValid() {
		j.key("addr")
		j.b = append(j.b, '"')
		j.b = ev.Addr.AppendTo(j.b)
		j.b = append(j.b, '"')
	}
	if ev.Limit != 0 {
		j.int("limit", int64(ev.Limit))
	}
	return j.end()
}

// AppendMessageJSON appends {"time":..,"log":log,"message":msg}, the JSON form of
// error lines.
func AppendMessageJSON(dst []byte, loc *time.Location, t time.Time, log, msg string) []byte {
	j := beginJSON(dst, t, loc, log)
	j.str("message", msg)
	return j.end()
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so that a hostile interface or rule name cannot make a line
// unparsable.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but breaks JavaScript readers
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
