package synth

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// Traffic is a busy link's worth of TCP: Flows connections that open with a
// handshake, exchange data both ways with their packets interleaved at random as
// on a shared link, and close. It is generated in phases so that a benchmark can
// time each one; WriteTraffic writes them all as one capture.
type Traffic struct {
	Flows   int    // concurrent connections
	Packets int    // data packets, spread over the flows
	Seed    uint64 // the same seed gives the same traffic
	flows   []flow
}

// flow is one connection's endpoints and sequence numbers.
type flow struct {
	client, server netip.AddrPort
	next           [2]uint32 // next sequence number: [0] client, [1] server
}

// NewTraffic lays out the flows: clients spread over 10.0.0.0/8 and servers over
// 172.16.0.0/12, so per-source limits never bite and hashes see realistic variety.
func NewTraffic(flows, packets int, seed uint64) *Traffic {
	t := &Traffic{Flows: flows, Packets: packets, Seed: seed, flows: make([]flow, flows)}
	for i := range t.flows {
		c := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s := netip.AddrFrom4([4]byte{172, 16 + byte(i>>20&0x0f), byte(i >> 7), byte(i*7 + 1)})
		t.flows[i] = flow{
			client: netip.AddrPortFrom(c, uint16(1024+i%60000)),
			server: netip.AddrPortFrom(s, 443),
			next:   [2]uint32{uint32(i)*2654435761 + 1, uint32(i)*40503 + 7},
		}
	}
	return t
}

// Client and Server return flow i's endpoints.
func (t *Traffic) Client(i int) netip.AddrPort { return t.flows[i].client }
func (t *Traffic) Server(i int) netip.AddrPort { return t.flows[i].server }

// Yield receives one raw IPv4 packet (valid only during the call) and the flow it
// belongs to.
type Yield func(ipPacket []byte, flow int)

var synOpts = packet.TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true}

// segment builds one segment of flow f from side dir (0 client) carrying n payload
// bytes that are announced by the IP total length but not stored: headers only, as
// in a capture cut by its snapshot length. It advances the sender's sequence number.
func (t *Traffic) segment(scratch []byte, fi, dir int, flags packet.TCPFlags, n int, opts packet.TCPOptions) []byte {
	f := &t.flows[fi]
	src, dst := f.client, f.server
	if dir == 1 {
		src, dst = dst, src
	}
	spec := packet.TCPSpec{Src: src, Dst: dst, Seq: f.next[dir], Flags: flags, Window: 65535, Options: opts}
	if flags&packet.ACK != 0 {
		spec.Ack = f.next[1-dir]
	}
	b := packet.AppendTCP(scratch[:0], spec)
	if n > 0 {
		binary.BigEndian.PutUint16(b[2:4], uint16(len(b)+n))
	}
	adv := uint32(n)
	if flags&(packet.SYN|packet.FIN) != 0 {
		adv++
	}
	f.next[dir] += adv
	return b
}

// SYNs yields every flow's SYN.
func (t *Traffic) SYNs(y Yield) {
	var scratch [128]byte
	for i := range t.flows {
		y(t.segment(scratch[:0], i, 0, packet.SYN, 0, synOpts), i)
	}
}

// Handshakes yields every flow's SYN-ACK and ACK.
func (t *Traffic) Handshakes(y Yield) {
	var scratch [128]byte
	for i := range t.flows {
		y(t.segment(scratch[:0], i, 1, packet.SYN|packet.ACK, 0, synOpts), i)
		y(t.segment(scratch[:0], i, 0, packet.ACK, 0, packet.TCPOptions{}), i)
	}
}

// Data yields Packets data packets over random flows: a quarter requests from the
// client, a quarter pure ACKs, half full segments from the server.
func (t *Traffic) Data(y Yield) {
	var scratch [128]byte
	rng := rand.New(rand.NewPCG(t.Seed, t.Seed^0x9e3779b97f4a7c15))
	for range t.Packets {
		fi := rng.IntN(len(t.flows))
		dir, n, flags := 1, 1448, packet.ACK|packet.PSH
		switch rng.IntN(4) {
		case 0:
			dir, n = 0, 200
		case 1:
			dir, n, flags = 0, 0, packet.ACK
		}
		y(t.segment(scratch[:0], fi, dir, flags, n, packet.TCPOptions{}), fi)
	}
}

// Teardowns yields every flow's FIN, FIN and last ACK.
func (t *Traffic) Teardowns(y Yield) {
	var scratch [128]byte
	for i := range t.flows {
		y(t.segment(scratch[:0], i, 0, packet.FIN|packet.ACK, 0, packet.TCPOptions{}), i)
		y(t.segment(scratch[:0], i, 1, packet.FIN|packet.ACK, 0, packet.TCPOptions{}), i)
		y(t.segment(scratch[:0], i, 0, packet.ACK, 0, packet.TCPOptions{}), i)
	}
}

// WriteTraffic writes all phases of t as a classic pcap of Ethernet frames, one
// packet per microsecond from start, headers only (snapshot length 96, original
// lengths as on the wire): the kind of capture replay's speed is measured on.
func WriteTraffic(w io.Writer, t *Traffic, start time.Time) (packets int, err error) {
	return WriteTrafficEvery(w, t, start, time.Microsecond)
}

// WriteTrafficEvery is WriteTraffic with one packet every step: a slow enough
// clock lets connections time out between their packets.
func WriteTrafficEvery(w io.Writer, t *Traffic, start time.Time, step time.Duration) (packets int, err error) {
	pw, err := capture.NewPcapWriter(w, packet.LinkEthernet, 96, false)
	if err != nil {
		return 0, err
	}
	now := start.UnixNano()
	frame := make([]byte, 0, 160)
	emit := func(ip []byte, _ int) {
		if err != nil {
			return
		}
		frame = packet.AppendEthernet(frame[:0], macA, macB, nil, ip)
		wire := len(frame) - len(ip) + int(binary.BigEndian.Uint16(ip[2:4]))
		err = pw.WritePacket(now, frame, wire)
		now += int64(step)
		packets++
	}
	t.SYNs(emit)
	t.Handshakes(emit)
	t.Data(emit)
	t.Teardowns(emit)
	if err != nil {
		return packets, err
	}
	return packets, pw.Close()
}
