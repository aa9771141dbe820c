package logging

import (
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// TestLinesFromDecodedPackets builds the incident packets as bytes, decodes them
// with packet.Decode and formats the result: the lengths Kerio prints (len = IP
// total length, tcplen/udplen = transport payload) must come out of the decoder's
// fields exactly as the hand-filled Parsed values of the golden tests assume.
func TestLinesFromDecodedPackets(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte
		ev    PacketEvent
		want  string
	}{
		{"kerio seed", packet.AppendTCP(nil, packet.TCPSpec{
			Src: netip.MustParseAddrPort("10.2.0.2:8080"), Dst: netip.MustParseAddrPort("10.1.0.2:27779"),
			Seq: 2673204299, Ack: 173509679, Flags: packet.ACK | packet.PSH, Window: 27, Payload: make([]byte, 52)}),
			PacketEvent{Time: utc("23/Sep/2012 11:50:42"), Iface: "DMZ", Reason: reason.HandshakeNotCompleted},
			"[23/Sep/2012 11:50:42] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:92, 10.2.0.2:8080 -> 10.1.0.2:27779, flags:[ ACK PSH ], seq:2673204299 ack:173509679, win:27, tcplen:52)\n"},
		{"udp anti-spoofing", packet.AppendUDP(nil, packet.UDPSpec{
			Src: netip.MustParseAddrPort("10.0.0.138:68"), Dst: netip.MustParseAddrPort("255.255.255.255:67"), Payload: make([]byte, 306)}),
			PacketEvent{Time: utc("05/Mar/2014 08:01:09"), Iface: "Cable", Reason: reason.AntiSpoofing},
			"[05/Mar/2014 08:01:09] {pktdrop} packet dropped: Anti-spoofing (from Cable, proto:UDP, len:334, 10.0.0.138:68 -> 255.255.255.255:67, udplen:306)\n"},
		{"icmp traffic rule", packet.AppendICMPEcho(nil, packet.ICMPEchoSpec{
			Src: netip.MustParseAddr("212.212.62.103"), Dst: netip.MustParseAddr("69.172.201.208"), ID: 12380, Seq: 1, Payload: make([]byte, 56)}),
			PacketEvent{Time: utc("22/Dec/2015 15:32:40"), Iface: "WAN", Outbound: true, Reason: reason.TrafficRule, Rule: "Example traffic rule"},
			"[22/Dec/2015 15:32:40] {pktdrop} packet dropped: Traffic rule: Example traffic rule (to WAN, proto:ICMP, len:84, 212.212.62.103 -> 69.172.201.208, type:8 code:0 id:12380 seq:1 ttl:64)\n"},
		{"tcp over ipv6", packet.AppendTCP(nil, packet.TCPSpec{
			Src: netip.MustParseAddrPort("[2001:db8::1]:443"), Dst: netip.MustParseAddrPort("[2001:db8:1::20]:50123"),
			Seq: 1, Ack: 2, Flags: packet.FIN | packet.ACK, Window: 512, Payload: make([]byte, 3)}),
			PacketEvent{Time: utc("07/Nov/2007 13:00:05"), Iface: "LAN", Outbound: true, Reason: reason.StateExpired,
				Idle: 7200 * time.Second, Timeout: 3600 * time.Second, TimeoutName: "TcpEstablishedTimeout"},
			"[07/Nov/2007 13:00:05] {pktdrop} packet dropped: connection state expired (idle 7200 s > TcpEstablishedTimeout 3600 s) (to LAN, proto:TCP, len:63, [2001:db8::1]:443 -> [2001:db8:1::20]:50123, flags:[ FIN ACK ], seq:1 ack:2, win:512, tcplen:3)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p packet.Parsed
			if err := p.Decode(tt.bytes, packet.LinkRaw); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			ev := tt.ev
			ev.P = &p
			if got := string(AppendDrop(nil, time.UTC, &ev)); got != tt.want {
				t.Errorf("\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}
