package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/firewall"
	"keepstate/logging"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

func tcp(src, dst string, flags packet.TCPFlags, seq, ack uint32) []byte {
	return packet.AppendTCP(nil, packet.TCPSpec{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Seq: seq, Ack: ack, Flags: flags, Window: 1000})
}

// A rule change closes a connection; the connection log and the warning log say so
// even though the rule did not ask for connection logging.
func TestRuleChangeIsLogged(t *testing.T) {
	var connLog, warnLog bytes.Buffer
	rep := &Reporter{Log: logging.New(logging.Config{
		Connection: logging.Sink{Text: &connLog}, Warning: logging.Sink{Text: &warnLog}, Location: time.UTC,
	})}
	cfg := config.Default()
	eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: rep.ConnEnd})
	if err != nil {
		t.Fatal(err)
	}
	rep.Engine = eng
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano()
	var p packet.Parsed
	for i, b := range [][]byte{
		tcp("10.0.0.1:5000", "10.9.0.1:22", packet.SYN, 1, 0),
		tcp("10.9.0.1:22", "10.0.0.1:5000", packet.SYN|packet.ACK, 100, 2),
		tcp("10.0.0.1:5000", "10.9.0.1:22", packet.ACK, 2, 101),
	} {
		if d := eng.Decide(b, packet.LinkRaw, -1, now+int64(i), &p); d.Action != firewall.Accept {
			t.Fatalf("packet %d: %v", i, d.Reason)
		}
	}
	deny := config.Default()
	deny.Policy.Rules[0].Action = policy.Drop
	if n, err := deny.ApplyTo(eng); err != nil || n != 1 {
		t.Fatalf("Apply closed %d, %v", n, err)
	}
	rep.Log.Close()
	if !strings.Contains(connLog.String(), "[Connection] TCP 10.0.0.1:5000 > 10.9.0.1:22") {
		t.Errorf("connection log:\n%s", connLog.String())
	}
	if !strings.Contains(warnLog.String(), "Connection TCP 10.0.0.1:5000 > 10.9.0.1:22 closed: the new traffic rules no longer permit it") {
		t.Errorf("warning log:\n%s", warnLog.String())
	}
}

// The warning names the limit that refused the connection, with its value.
func TestConnectionLimitWarningNamesTheLimit(t *testing.T) {
	for _, tc := range []struct {
		conns, rate, rule int
		want              string
	}{
		{2, 600, 0, "Connection limit for source address '10.0.0.1' reached (limit: 2)"},
		{600, 2, 0, "Connection limit per minute for source address '10.0.0.1' reached (limit: 2)"},
		{600, 600, 2, "Connection limit of rule 'Permit all connections' for source address '10.0.0.1' reached (limit: 2)"},
	} {
		var warnLog bytes.Buffer
		rep := &Reporter{Log: logging.New(logging.Config{Warning: logging.Sink{Text: &warnLog}, Location: time.UTC})}
		cfg := config.Default()
		cfg.Settings.ConnLimitPerSource, cfg.Settings.NewConnLimitPerSourcePerMinute = tc.conns, tc.rate
		cfg.Policy.Rules[0].MaxConnectionsPerSource = tc.rule
		eng, err := cfg.NewEngine(firewall.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rep.Engine = eng
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano()
		var p packet.Parsed
		for i := range 3 {
			b := tcp(fmt.Sprintf("10.0.0.1:%d", 5000+i), "10.9.0.1:22", packet.SYN, 1, 0)
			d := eng.Decide(b, packet.LinkRaw, -1, now, &p)
			rep.Packet(now, b, packet.LinkRaw, &p, &d)
		}
		rep.Log.Close()
		if !strings.Contains(warnLog.String(), tc.want) {
			t.Errorf("limits %d/%d: warning log\n%s\nwant %q", tc.conns, tc.rate, warnLog.String(), tc.want)
		}
	}
}

// Flush puts the dropped packets on disk before Close.
func TestDropWriterFlush(t *testing.T) {
	var buf bytes.Buffer
	dw, err := NewDropWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	frame := tcp("10.0.0.1:1", "10.0.0.2:2", packet.ACK, 1, 1)
	ev := logging.PacketEvent{Time: time.Unix(1, 0), Reason: reason.HandshakeNotCompleted}
	dw.Write(1e9, frame, packet.LinkRaw, "LAN", &ev)
	before := buf.Len()
	if err := dw.Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= before || !bytes.Contains(buf.Bytes(), frame) {
		t.Errorf("flush wrote %d bytes, the packet is not in them", buf.Len()-before)
	}
}
