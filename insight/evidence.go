package insight

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"keepstate/conntrack"
	"keepstate/reason"
)

// Samples an insight keeps: the first few events, which show how it began, and the
// latest, which show it is still going on.
const (
	firstSamples = 3
	lastSamples  = 2
)

// evidence is what a group counted: when, how much, and a few of the events kept
// as they came (formatting waits until someone reads the insight).
type evidence struct {
	first, last int64
	count       uint64
	head        [firstSamples]sampleEvent
	nHead       int
	tail        [lastSamples]sampleEvent
	nTail       int // events written to tail, modulo nothing: tail[nTail%lastSamples] is next
}

// sampleEvent is a dropped packet or an ended connection.
type sampleEvent struct {
	drop  Drop
	end   End
	isEnd bool
}

func (e *evidence) ev() *evidence { return e }

// seen counts n events at t without keeping one.
func (e *evidence) seen(t int64, n uint64) {
	if e.first == 0 || t < e.first {
		e.first = t
	}
	e.last = max(e.last, t)
	e.count += n
}

// addDrop counts a dropped packet and keeps it as a sample if it is among the
// first or the latest.
func (e *evidence) addDrop(d *Drop) {
	e.seen(d.Time, 1)
	e.keep(sampleEvent{drop: *d})
}

// addEnd counts an ended connection and keeps it as a sample likewise.
func (e *evidence) addEnd(x *End) {
	e.seen(x.At, 1)
	e.keep(sampleEvent{end: *x, isEnd: true})
}

func (e *evidence) keep(s sampleEvent) {
	if e.nHead < firstSamples {
		e.head[e.nHead] = s
		e.nHead++
		return
	}
	e.tail[e.nTail%lastSamples] = s
	e.nTail++
}

// samples formats the kept events, oldest first.
func (e *evidence) samples(v *env) []Sample {
	out := make([]Sample, 0, firstSamples+lastSamples)
	for i := range e.nHead {
		out = append(out, e.head[i].sample(v))
	}
	n := min(e.nTail, lastSamples)
	for i := range n {
		out = append(out, e.tail[(e.nTail-n+i)%lastSamples].sample(v))
	}
	return out
}

func (s *sampleEvent) sample(v *env) Sample {
	if s.isEnd {
		return s.end.sample()
	}
	d := &s.drop
	out := Sample{Time: utc(d.Time), Packet: d.spec(v.ifaceName(d.InIface)), Reason: d.Reason.String(), Detail: dropDetail(d)}
	switch {
	case d.Capture != "" && d.Packet > 0:
		out.Explain = "keepstate explain" + v.configFlag() + " --capture " + shellQuote(d.Capture) + " --packet " + strconv.FormatInt(d.Packet, 10)
	default:
		out.Explain = "keepstate explain" + v.configFlag() + " " + shellQuote(out.Packet)
	}
	return out
}

// dropDetail says why a packet was dropped, in the debug log's words plus what the
// engine knew.
func dropDetail(d *Drop) string {
	s := d.Reason.Text()
	switch d.Reason {
	case reason.StateExpired:
		if d.Timeout > 0 {
			s += fmt.Sprintf(": idle %s, longer than the %s timeout of its %s state", fmtDuration(d.Idle), fmtDuration(d.Timeout), d.EndedState)
		} else {
			s += fmt.Sprintf(": the connection (%s) had ended %s before", d.EndedState, fmtDuration(d.Idle))
		}
	case reason.ConnectionLimit:
		if d.Limit == conntrack.LimitPerMinute {
			s += ": new connections per minute from this source"
		} else {
			s += ": connections open at once from this source"
		}
	case reason.OutOfWindow:
		if d.State != conntrack.StateNone {
			s += " (connection " + d.State.String() + ")"
		}
	}
	return s
}

func (x *End) sample() Sample {
	ci := &x.Info
	cl := netip.AddrPortFrom(ci.Src, ci.SrcPort)
	sv := netip.AddrPortFrom(ci.Dst, ci.DstPort)
	var detail string
	switch x.Cause {
	case conntrack.EndEvicted:
		detail = fmt.Sprintf("evicted to make room, in state %s", ci.State)
	case conntrack.EndExpired:
		detail = fmt.Sprintf("forgotten in state %s after its %s timeout", ci.State, fmtDuration(ci.Timeout))
	default:
		detail = fmt.Sprintf("ended (%s) in state %s", x.Cause, ci.State)
	}
	detail += fmt.Sprintf(": %s from the opening side, %d back", plural(int(ci.Packets[0]), "packet"), ci.Packets[1])
	return Sample{Time: utc(x.At), Packet: tupleString(ci.Proto, cl, sv), Reason: x.Cause.String(), Detail: detail}
}

// configFlag is " --config PATH" for explain commands, or nothing.
func (v *env) configFlag() string {
	if v.explainConfig == "" {
		return ""
	}
	return " --config " + shellQuote(v.explainConfig)
}

// ifaceName names interface i of the ruleset in force, or "unknown".
func (v *env) ifaceName(i int) string {
	if v.rules == nil {
		return "unknown"
	}
	ifs := v.rules.Interfaces()
	if i < 0 || i >= len(ifs) {
		return "unknown"
	}
	return ifs[i].Name
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fmtDuration writes a duration the way an operator says it: "2 h", "2 h 4 min",
// "37 s", "1.2 s", "300 ms".
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 s"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s", int64(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		m := d.Round(time.Second)
		if s := m % time.Minute; s != 0 {
			return fmt.Sprintf("%d min %d s", m/time.Minute, s/time.Second)
		}
		return fmt.Sprintf("%d min", m/time.Minute)
	}
	m := d.Round(time.Minute)
	if mm := m % time.Hour; mm != 0 {
		return fmt.Sprintf("%d h %d min", m/time.Hour, mm/time.Minute)
	}
	return fmt.Sprintf("%d h", m/time.Hour)
}

// count writes n with thin grouping, as "37" or "12 034".
func count(n int) string {
	s := strconv.Itoa(n)
	if n < 10000 {
		return s
	}
	var b []byte
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ' ')
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// plural writes "1 connection", "37 connections", "2 replies", "3 connections
// were" (for "connection was").
func plural(n int, word string) string {
	if w, ok := strings.CutSuffix(word, " was"); ok {
		if n == 1 {
			return "1 " + word
		}
		return plural(n, w) + " were"
	}
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") && !strings.HasSuffix(word, "ey") {
		return count(n) + " " + word[:len(word)-1] + "ies"
	}
	return count(n) + " " + word + "s"
}

// perHour writes an event rate for a cost sentence: "12 an hour", "3.2 a second".
func perHour(perSecond float64) string {
	switch h := perSecond * 3600; {
	case h < 1:
		return fmt.Sprintf("%.1f an hour", h)
	case perSecond < 1:
		return fmt.Sprintf("%.0f an hour", h)
	}
	return fmt.Sprintf("%.1f a second", perSecond)
}
