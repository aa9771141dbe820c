package logging

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

func TestAppendStamp(t *testing.T) {
	plus2 := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		t    time.Time
		loc  *time.Location
		want string
	}{
		{time.Date(2012, 9, 23, 11, 50, 42, 999_000_000, time.UTC), time.UTC, "[23/Sep/2012 11:50:42]"},
		{time.Date(2013, 1, 5, 3, 4, 5, 0, time.UTC), time.UTC, "[05/Jan/2013 03:04:05]"},
		{time.Date(2013, 12, 31, 23, 0, 0, 0, time.UTC), plus2, "[01/Jan/2014 01:00:00]"},
		{time.Date(987, 6, 7, 0, 0, 0, 0, time.UTC), time.UTC, "[07/Jun/0987 00:00:00]"},
		{time.Date(12345, 6, 7, 0, 0, 0, 0, time.UTC), time.UTC, "[07/Jun/12345 00:00:00]"},
	}
	for _, tt := range tests {
		if got := string(appendStamp(nil, tt.t, tt.loc)); got != tt.want {
			t.Errorf("appendStamp(%v, %v) = %s, want %s", tt.t, tt.loc, got, tt.want)
		}
	}
}

func TestAppendSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{3600 * time.Second, "3600"},
		{250 * time.Millisecond, "0.25"},
		{3600*time.Second + 400*time.Millisecond, "3600.4"},
		{3600*time.Second + 100*time.Microsecond, "3600.0"}, // not exact, but rounds to whole
		{1500 * time.Microsecond, "0.002"},
		{-2 * time.Second, "-2"},
	}
	for _, tt := range tests {
		if got := string(appendSeconds(nil, tt.d)); got != tt.want {
			t.Errorf("appendSeconds(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestFlagOrder(t *testing.T) {
	tests := []struct {
		f         packet.TCPFlags
		list      string
		jsonWords string
	}{
		{0, "", ""},
		{packet.SYN, " SYN", "SYN"},
		{packet.SYN | packet.ACK, " SYN ACK", "SYN ACK"},
		{packet.ACK | packet.PSH, " ACK PSH", "ACK PSH"},
		{packet.FIN | packet.ACK, " FIN ACK", "FIN ACK"},
		{packet.RST | packet.ACK, " RST ACK", "RST ACK"},
		{packet.FIN | packet.PSH | packet.URG, " FIN PSH URG", "FIN PSH URG"},
		{packet.ECE | packet.CWR | packet.SYN, " SYN ECE CWR", "SYN ECE CWR"},
	}
	for _, tt := range tests {
		if got := string(appendFlagList(nil, tt.f)); got != tt.list {
			t.Errorf("appendFlagList(%08b) = %q, want %q", tt.f, got, tt.list)
		}
		if got := string(appendFlagWords([]byte("x"), tt.f)); got != "x"+tt.jsonWords {
			t.Errorf("appendFlagWords(%08b) = %q, want %q", tt.f, got, "x"+tt.jsonWords)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"DMZ", `"DMZ"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"line\nbreak\r\t", `"line\nbreak\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001f\u007f"`},
		{"Přístup", `"Přístup"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
	}
	for _, tt := range tests {
		got := appendJSONString(nil, tt.in)
		if string(got) != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON: %v", tt.in, got, err)
		}
	}
}

// Names from configuration end up in every format; a line break in one must not
// split a log line, and a quote must not break a JSON line.
func TestHostileNamesStayOneLine(t *testing.T) {
	ev := seedEvent()
	ev.Iface = "DMZ\n[01/Jan/2000 00:00:00] forged"
	ev.Rule = "r\"ule\r\x00"
	ev.Reason = reason.TrafficRule
	ev.ConnState = "EST\nABLISHED"
	checkOneLine(t, AppendDrop(nil, time.UTC, ev))
	checkOneLine(t, AppendFilter(nil, time.UTC, ev))
	m := checkJSONLine(t, AppendDropJSON(nil, time.UTC, ev))
	if m["iface"] != ev.Iface || m["rule"] != ev.Rule {
		t.Errorf("JSON did not round-trip names: %#v", m)
	}
	c := &ConnEvent{Rule: "a\nb", Service: "c\rd", Proto: "T\nCP", Cause: "x\"y"}
	checkOneLine(t, AppendConnection(nil, time.UTC, c))
	checkJSONLine(t, AppendConnectionJSON(nil, time.UTC, c))
}

func TestConnDurationNeverNegative(t *testing.T) {
	start := utc("16/Apr/2013 10:51:00")
	tests := []struct {
		start, end time.Time
		want       time.Duration
	}{
		{start, start.Add(121 * time.Second), 121 * time.Second},
		{start, start.Add(-5 * time.Second), 0},
		{time.Time{}, start, 0},
	}
	for _, tt := range tests {
		ev := &ConnEvent{Start: tt.start, End: tt.end}
		if got := connDuration(ev); got != tt.want {
			t.Errorf("connDuration(%v..%v) = %v, want %v", tt.start, tt.end, got, tt.want)
		}
	}
}

func TestAddrWithoutValue(t *testing.T) {
	if got := string(appendAddr(nil, netip.Addr{})); got != "?" {
		t.Errorf("appendAddr(invalid) = %q", got)
	}
	if got := string(appendAddrPort(nil, netip.Addr{}, 80)); got != "?:80" {
		t.Errorf("appendAddrPort(invalid, 80) = %q", got)
	}
	if got := string(appendAddrPort(nil, netip.MustParseAddr("fe80::1%eth0"), 22)); got != "[fe80::1%eth0]:22" {
		t.Errorf("appendAddrPort(zoned) = %q", got)
	}
}
