package logging

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// The test packets are built by filling packet.Parsed directly, as the decoder would.

func tcpPacket(src, dst string, sport, dport uint16, flags packet.TCPFlags, seq, ack uint32, win uint16, ipLen, payload int) *packet.Parsed {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	v := uint8(4)
	if s.Is6() {
		v = 6
	}
	return &packet.Parsed{
		Link: packet.LinkRaw, IPVersion: v, Src: s, Dst: d, Proto: packet.ProtoTCP, TTL: 64,
		IPLen: ipLen, SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: seq, Ack: ack,
		Window: win, TCPHeaderLen: 20, PayloadLen: payload, Length: ipLen,
	}
}

func udpPacket(src, dst string, sport, dport uint16, ipLen, payload int) *packet.Parsed {
	return &packet.Parsed{
		Link: packet.LinkRaw, IPVersion: 4, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: packet.ProtoUDP, TTL: 64, IPLen: ipLen, SrcPort: sport, DstPort: dport,
		PayloadLen: payload, Length: ipLen,
	}
}

func icmpPacket(src, dst string, typ, code uint8, id, seq uint16, ipLen int) *packet.Parsed {
	return &packet.Parsed{
		Link: packet.LinkRaw, IPVersion: 4, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: packet.ProtoICMP, TTL: 64, IPLen: ipLen, ICMPType: typ, ICMPCode: code,
		ICMPID: id, ICMPSeq: seq, PayloadLen: ipLen - 28, Length: ipLen,
	}
}

func utc(s string) time.Time {
	t, err := time.Parse("02/Jan/2006 15:04:05.999999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

// seedEvent is the packet of the Kerio Require3WayHandshake incident: a Tomcat
// server's reply to a SYN the firewall never saw.
func seedEvent() *PacketEvent {
	return &PacketEvent{
		Time:   utc("23/Sep/2012 11:50:42"),
		Iface:  "DMZ",
		P:      tcpPacket("10.2.0.2", "10.1.0.2", 8080, 27779, packet.ACK|packet.PSH, 2673204299, 173509679, 27, 92, 52),
		Reason: reason.HandshakeNotCompleted,
	}
}

type goldenCase struct {
	name string
	text func([]byte) []byte
	json func([]byte) []byte
}

func dropCase(name string, ev *PacketEvent) goldenCase {
	return goldenCase{name,
		func(b []byte) []byte { return AppendDrop(b, time.UTC, ev) },
		func(b []byte) []byte { return AppendDropJSON(b, time.UTC, ev) }}
}

func filterCase(name string, ev *PacketEvent) goldenCase {
	return goldenCase{name,
		func(b []byte) []byte { return AppendFilter(b, time.UTC, ev) },
		func(b []byte) []byte { return AppendFilterJSON(b, time.UTC, ev) }}
}

func connCase(name string, ev *ConnEvent) goldenCase {
	return goldenCase{name,
		func(b []byte) []byte { return AppendConnection(b, time.UTC, ev) },
		func(b []byte) []byte { return AppendConnectionJSON(b, time.UTC, ev) }}
}

func warnCase(name string, ev WarningEvent) goldenCase {
	return goldenCase{name,
		func(b []byte) []byte { return AppendWarning(b, time.UTC, &ev) },
		func(b []byte) []byte { return AppendWarningJSON(b, time.UTC, &ev) }}
}

func goldenCases() []goldenCase {
	t0 := utc("07/Nov/2007 13:00:05")
	later := &packet.Parsed{Link: packet.LinkRaw, IPVersion: 4, Src: netip.MustParseAddr("10.9.0.7"),
		Dst: netip.MustParseAddr("10.1.0.2"), Proto: packet.ProtoUDP, TTL: 63, IPLen: 548,
		Frag: packet.LaterFragment, FragOffset: 1480, PayloadLen: 528, Length: 548}
	gre := &packet.Parsed{Link: packet.LinkRaw, IPVersion: 4, Src: netip.MustParseAddr("198.51.100.1"),
		Dst: netip.MustParseAddr("203.0.113.9"), Proto: 47, TTL: 60, IPLen: 120, PayloadLen: 100, Length: 120}
	arp := &packet.Parsed{Link: packet.LinkEthernet, EtherType: 0x0806, Length: 42}
	return []goldenCase{
		dropCase("drop_tcp_handshake_seed", seedEvent()),
		dropCase("drop_tcp_state_expired_keepalive", &PacketEvent{
			Time: t0, Iface: "DB",
			P:      tcpPacket("10.0.2.10", "10.0.1.5", 1521, 31578, packet.ACK, 3000000000, 120000001, 65535, 41, 1),
			Reason: reason.StateExpired, Idle: 7200 * time.Second, Timeout: 3600 * time.Second,
			TimeoutName: "TcpEstablishedTimeout", ConnState: "ESTABLISHED"}),
		dropCase("drop_tcp_state_expired_fraction", &PacketEvent{
			Time: t0, Iface: "DB",
			P:      tcpPacket("10.0.2.10", "10.0.1.5", 1521, 31578, packet.FIN|packet.ACK, 1, 2, 512, 40, 0),
			Reason: reason.StateExpired, Idle: 3600*time.Second + 400*time.Millisecond, Timeout: 3600 * time.Second}),
		dropCase("drop_tcp6_out_of_window", &PacketEvent{
			Time: t0, Iface: "LAN", Outbound: true,
			P:      tcpPacket("2001:db8::1", "2001:db8:1::20", 443, 50123, packet.RST|packet.ACK, 1, 2, 0, 60, 0),
			Reason: reason.OutOfWindow, ConnState: "ESTABLISHED"}),
		dropCase("drop_tcp_invalid_flags", &PacketEvent{
			Time: t0, Iface: "WAN",
			P:      tcpPacket("192.0.2.66", "203.0.113.5", 4444, 22, packet.FIN|packet.SYN|packet.RST|packet.PSH|packet.ACK|packet.URG|packet.ECE|packet.CWR, 7, 8, 1024, 40, 0),
			Reason: reason.InvalidTCPFlags}),
		dropCase("drop_tcp_null_flags", &PacketEvent{
			Time: t0, Iface: "WAN",
			P:      tcpPacket("192.0.2.66", "203.0.113.5", 4444, 22, 0, 7, 0, 1024, 40, 0),
			Reason: reason.InvalidTCPFlags}),
		dropCase("drop_udp_antispoofing", &PacketEvent{
			Time: utc("05/Mar/2014 08:01:09"), Iface: "Cable",
			P:      udpPacket("10.0.0.138", "255.255.255.255", 68, 67, 334, 306),
			Reason: reason.AntiSpoofing}),
		dropCase("drop_icmp_traffic_rule", &PacketEvent{
			Time: utc("22/Dec/2015 15:32:40"), Iface: "WAN", Outbound: true,
			P:      icmpPacket("212.212.62.103", "69.172.201.208", 8, 0, 12380, 1, 84),
			Reason: reason.TrafficRule, Rule: "Example traffic rule"}),
		dropCase("drop_icmp_error_unrelated", &PacketEvent{
			Time: t0, Iface: "WAN",
			P:      icmpPacket("198.51.100.7", "192.168.1.20", 3, 3, 0, 0, 56),
			Reason: reason.ICMPUnrelated}),
		dropCase("drop_other_protocol", &PacketEvent{Time: t0, Iface: "WAN", P: gre, Reason: reason.DefaultRule}),
		dropCase("drop_later_fragment", &PacketEvent{Time: t0, Iface: "WAN", P: later, Reason: reason.Fragment}),
		dropCase("drop_non_ip", &PacketEvent{Time: t0, Iface: "LAN", P: arp, Reason: reason.Unsupported}),
		dropCase("drop_no_packet", &PacketEvent{Time: t0, Iface: "LAN", Reason: reason.Malformed}),
		filterCase("filter_tcp_permit", &PacketEvent{
			Time: utc("16/Apr/2013 10:51:00"), Iface: "LAN", Outbound: true, Rule: "Local traffic", Action: "PERMIT",
			P: tcpPacket("195.39.55.4", "192.168.1.11", 41272, 3663, packet.ACK|packet.PSH, 1099972190, 3795090926, 64036, 47, 7)}),
		filterCase("filter_udp_deny", &PacketEvent{
			Time: utc("16/Apr/2013 10:51:02"), Iface: "WAN", Rule: "Block NetBIOS", Action: "DENY",
			Reason: reason.TrafficRule, P: udpPacket("203.0.113.50", "195.39.55.4", 137, 137, 78, 50)}),
		filterCase("filter_icmp6_drop_default_action", &PacketEvent{
			Time: utc("16/Apr/2013 10:51:03"), Iface: "WAN", Rule: "Default rule", Reason: reason.DefaultRule,
			P: &packet.Parsed{Link: packet.LinkRaw, IPVersion: 6, Src: netip.MustParseAddr("2001:db8::9"),
				Dst: netip.MustParseAddr("2001:db8:1::1"), Proto: packet.ProtoICMPv6, TTL: 255, IPLen: 104,
				ICMPType: 128, ICMPCode: 0, ICMPID: 7, ICMPSeq: 3, PayloadLen: 56, Length: 104}}),
		filterCase("filter_other_permit", &PacketEvent{
			Time: utc("16/Apr/2013 10:51:04"), Iface: "VPN", Rule: "GRE tunnel", P: gre}),
		connCase("connection_tcp", &ConnEvent{
			ID: 613181, Rule: "NAT", Service: "HTTP", Proto: "TCP",
			Src: netip.MustParseAddrPort("192.168.1.140:1193"), Dst: netip.MustParseAddrPort("1.2.3.4:80"),
			Start: utc("16/Apr/2013 10:51:00"), End: utc("16/Apr/2013 10:53:01.6"),
			Bytes: [2]uint64{1575, 1290}, Packets: [2]uint64{5, 9}, Cause: "closed"}),
		connCase("connection_udp6_no_service", &ConnEvent{
			ID: 7, Rule: "DNS out", Proto: "UDP",
			Src: netip.MustParseAddrPort("[2001:db8::10]:53000"), Dst: netip.MustParseAddrPort("[2001:db8::53]:53"),
			Start: utc("16/Apr/2013 10:51:00"), End: utc("16/Apr/2013 10:51:30"),
			Bytes: [2]uint64{60, 180}, Packets: [2]uint64{1, 1}, Cause: "expired"}),
		warnCase("warning_conn_limit_per_minute",
			ConnLimitWarning(utc("16/Apr/2013 11:00:00"), LimitPerMinute, netip.MustParseAddr("192.168.5.139"), 600)),
		warnCase("warning_conn_limit_concurrent",
			ConnLimitWarning(utc("16/Apr/2013 11:00:01"), LimitConcurrent, netip.MustParseAddr("192.168.5.139"), 600)),
		warnCase("warning_conn_limit_inbound",
			ConnLimitWarning(utc("16/Apr/2013 11:00:02"), LimitInbound, netip.MustParseAddr("2001:db8::80"), 1200)),
		{"error_message",
			func(b []byte) []byte {
				return AppendMessage(b, time.UTC, utc("16/Apr/2013 11:00:03"), "nfqueue: read: no buffer space\navailable")
			},
			func(b []byte) []byte {
				return AppendMessageJSON(b, time.UTC, utc("16/Apr/2013 11:00:03"), "error", "nfqueue: read: no buffer space\navailable")
			}},
	}
}

// TestGolden checks every line format against testdata/<case>.golden, which holds
// the text line followed by the JSON line. Run with -update to rewrite them, then
// read the diff.
func TestGolden(t *testing.T) {
	for _, c := range append(goldenCases(), suppressedGoldenCases()...) {
		t.Run(c.name, func(t *testing.T) {
			text := c.text(nil)
			js := c.json(nil)
			checkOneLine(t, text)
			checkJSONLine(t, js)
			got := append(append([]byte{}, text...), js...)
			compareGolden(t, c.name, got)
		})
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file\n got: %s\nwant: %s", name, got, want)
	}
}

func checkOneLine(t *testing.T, line []byte) {
	t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.Count(line, []byte{'\n'}) != 1 {
		t.Errorf("not exactly one newline-terminated line: %q", line)
	}
}

func checkJSONLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	checkOneLine(t, line)
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	return m
}

// The seed lines are also asserted literally, so that -update cannot bless a
// regression of the formats administrators already grep for.
func TestSeedLinesExact(t *testing.T) {
	got := string(AppendDrop(nil, time.UTC, seedEvent()))
	want := "[23/Sep/2012 11:50:42] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:92, 10.2.0.2:8080 -> 10.1.0.2:27779, flags:[ ACK PSH ], seq:2673204299 ack:173509679, win:27, tcplen:52)\n"
	if got != want {
		t.Errorf("seed drop line\n got: %s\nwant: %s", got, want)
	}

	filter := &PacketEvent{
		Time: utc("16/Apr/2013 10:51:00"), Iface: "LAN", Outbound: true, Rule: "Local traffic", Action: "PERMIT",
		P: tcpPacket("195.39.55.4", "192.168.1.11", 41272, 3663, packet.ACK|packet.PSH, 1099972190, 3795090926, 64036, 47, 7),
	}
	got = string(AppendFilter(nil, time.UTC, filter))
	want = "[16/Apr/2013 10:51:00] PERMIT 'Local traffic' packet to LAN, proto:TCP, len:47, ip/port:195.39.55.4:41272 -> 192.168.1.11:3663, flags: ACK PSH, seq:1099972190 ack:3795090926, win:64036, tcplen:7\n"
	if got != want {
		t.Errorf("filter line\n got: %s\nwant: %s", got, want)
	}

	conn := &ConnEvent{ID: 613181, Rule: "NAT", Service: "HTTP", Proto: "TCP",
		Src: netip.MustParseAddrPort("192.168.1.140:1193"), Dst: netip.MustParseAddrPort("1.2.3.4:80"),
		Start: utc("16/Apr/2013 10:51:00"), End: utc("16/Apr/2013 10:53:01"),
		Bytes: [2]uint64{1575, 1290}, Packets: [2]uint64{5, 9}}
	got = string(AppendConnection(nil, time.UTC, conn))
	want = "[16/Apr/2013 10:53:01] [ID] 613181 [Rule] NAT [Service] HTTP [Connection] TCP 192.168.1.140:1193 > 1.2.3.4:80 [Duration] 121 sec [Bytes] 1575/1290/2865 [Packets] 5/9/14\n"
	if got != want {
		t.Errorf("connection line\n got: %s\nwant: %s", got, want)
	}

	w := ConnLimitWarning(utc("16/Apr/2013 11:00:00"), LimitPerMinute, netip.MustParseAddr("192.168.5.139"), 600)
	got = string(AppendWarning(nil, time.UTC, &w))
	want = "[16/Apr/2013 11:00:00] Connection limit per minute for source address '192.168.5.139' reached (limit: 600)\n"
	if got != want {
		t.Errorf("warning line\n got: %s\nwant: %s", got, want)
	}
}

// TestSeedJSONFields decodes the seed's JSON line and checks each field's value
// and type, so that the names are a contract and not only a golden snapshot.
func TestSeedJSONFields(t *testing.T) {
	m := checkJSONLine(t, AppendDropJSON(nil, time.UTC, seedEvent()))
	want := map[string]any{
		"time": "2012-09-23T11:50:42Z", "log": "debug", "event": "drop",
		"reason": "handshake_not_completed", "reason_text": "3-way handshake not completed",
		"iface": "DMZ", "direction": "in", "ip_version": 4.0, "proto": "TCP",
		"src": "10.2.0.2", "dst": "10.1.0.2", "len": 92.0, "ttl": 64.0, "sport": 8080.0, "dport": 27779.0,
		"flags": "ACK PSH", "seq": 2673204299.0, "ack": 173509679.0, "win": 27.0, "payload_len": 52.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s = %#v", k, m[k])
		}
	}
}
