package synth

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// PairPath describes two capture points, A on the clients' side of a device and B
// on the servers' side, and what happens to packets between them. WritePair
// re-enacts web servers (10.1.0.2, 10.1.0.3) calling Tomcat (10.2.0.2:8080) across
// it and writes what each capture point sees.
type PairPath struct {
	Start time.Time
	Conns int
	// ClockOffset is how far B's capture clock runs ahead of A's.
	ClockOffset time.Duration
	// Transit is the one-way time from one capture point to the other (default
	// 200 µs).
	Transit time.Duration
	// DropEvery makes the device drop every DropEvery-th packet that reaches it,
	// counted over both directions (0: none).
	DropEvery int
	// Around reports whether connection i's requests bypass the device and both
	// capture points (a switch leaking them), while its replies still cross.
	Around func(i int) bool
	// Strict makes the device drop every reply of a connection whose requests went
	// around, as a firewall that enforces the TCP handshake does (the first story).
	Strict bool
}

// PairResult is what WritePair wrote: the truth a diff must find.
type PairResult struct {
	Packets int // packets sent, captured or not
	Crossed int // seen on A and B
	OnlyA   int
	OnlyB   int
	// DroppedConns counts, per connection index, the packets the device dropped.
	DroppedConns map[int]int
	// AroundConns lists the connections whose requests went around.
	AroundConns []int
	Clients     []netip.AddrPort // per connection
	Server      netip.AddrPort
}

// defaultTransit is the time a packet takes from one capture point to the other.
const defaultTransit = 200 * time.Microsecond

// WritePair writes capture A as pcapng (interface "tap-a") and capture B as pcap
// with nanosecond timestamps, both Ethernet. A packet that crosses the device shows
// up on the far side Transit later with its TTL one lower and its IP checksum
// recomputed; MAC addresses differ per side. Capture interface names match no
// firewall interface on purpose: a capture point sees both directions.
func WritePair(a, b io.Writer, path PairPath) (*PairResult, error) {
	if path.Transit == 0 {
		path.Transit = defaultTransit
	}
	res := &PairResult{DroppedConns: map[int]int{}, Server: netip.MustParseAddrPort("10.2.0.2:8080")}
	recA := NewRecorder("tap-a")
	var recB []recorded // written as pcap, which has no interfaces
	webServers := []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3")}
	reached := 0 // packets that reached the device
	dropNext := func() bool {
		reached++
		return path.DropEvery > 0 && reached%path.DropEvery == 0
	}
	for i := 0; i < path.Conns; i++ {
		client := netip.AddrPortFrom(webServers[i%2], uint16(40000+i))
		res.Clients = append(res.Clients, client)
		around := path.Around != nil && path.Around(i)
		if around {
			res.AroundConns = append(res.AroundConns, i)
		}
		c := NewConv(client, res.Server, uint32(1000+i))
		t0 := path.Start.Add(time.Duration(i) * 500 * time.Millisecond)
		at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
		send := func(ms float64, from Side, pkt []byte) {
			res.Packets++
			t := at(ms)
			if from == FromClient {
				if around {
					return // neither capture point sees it
				}
				recA.Add("tap-a", t, pkt)
				if dropNext() {
					res.OnlyA++
					res.DroppedConns[i]++
					return
				}
				recB = append(recB, recorded{t: t.Add(path.Transit + path.ClockOffset), frame: frameB(routed(pkt))})
				res.Crossed++
				return
			}
			recB = append(recB, recorded{t: t.Add(path.ClockOffset), frame: frameB(pkt)})
			if around && path.Strict {
				res.OnlyB++
				return
			}
			if dropNext() {
				res.OnlyB++
				res.DroppedConns[i]++
				return
			}
			recA.Add("tap-a", t.Add(path.Transit), routed(pkt))
			res.Crossed++
		}
		send(0, FromClient, c.Segment(FromClient, packet.SYN, 0))
		send(0.3, FromServer, c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		send(0.6, FromClient, c.Segment(FromClient, packet.ACK, 0))
		send(1, FromClient, c.Segment(FromClient, packet.ACK|packet.PSH, 310))
		send(6, FromServer, c.Segment(FromServer, packet.ACK|packet.PSH, 52))
		send(6.3, FromClient, c.Segment(FromClient, packet.ACK, 0))
		send(50, FromClient, c.Segment(FromClient, packet.FIN|packet.ACK, 0))
		send(50.3, FromServer, c.Segment(FromServer, packet.FIN|packet.ACK, 0))
		send(50.6, FromClient, c.Segment(FromClient, packet.ACK, 0))
	}
	if err := recA.WritePcapNG(a); err != nil {
		return nil, err
	}
	sortByTime(recB)
	pw, err := capture.NewPcapWriter(b, packet.LinkEthernet, 65535, true)
	if err != nil {
		return nil, err
	}
	for _, p := range recB {
		if err := pw.WritePacket(p.t.UnixNano(), p.frame, len(p.frame)); err != nil {
			return nil, err
		}
	}
	return res, pw.Close()
}

var (
	macC = [6]byte{0x00, 0x1b, 0x21, 0x0c, 0x00, 0x03}
	macD = [6]byte{0x00, 0x1b, 0x21, 0x0d, 0x00, 0x04}
)

// frameB wraps an IP packet as B's segment of the network sees it: other MACs.
func frameB(ipPacket []byte) []byte { return packet.AppendEthernet(nil, macC, macD, nil, ipPacket) }

// routed returns a copy of an IPv4 packet as a router forwards it: TTL one lower,
// header checksum recomputed.
func routed(ipPacket []byte) []byte {
	b := append([]byte(nil), ipPacket...)
	if len(b) < 20 || b[0]>>4 != 4 {
		return b
	}
	ihl := int(b[0]&0x0f) * 4
	b[8]--
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:12], packet.Checksum(b[:ihl]))
	return b
}
