// Package synth writes deterministic synthetic captures: the two stories of
// keepstate's seeds re-enacted packet by packet, for the demo, for tests of replay
// and of the diagnostics. The same arguments always give the same bytes.
package synth

import (
	"net/netip"
	"slices"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// Conv is one TCP conversation: it keeps each side's sequence numbers so that the
// segments it builds are what two real stacks would send.
type Conv struct {
	Client, Server netip.AddrPort
	next           [2]uint32 // next sequence number: [0] client, [1] server
	ipid           [2]uint16
	Window         uint16 // advertised window (unscaled; both SYNs carry scale 7)
}

// NewConv starts a conversation with initial sequence numbers derived from seed.
func NewConv(client, server netip.AddrPort, seed uint32) *Conv {
	return &Conv{
		Client: client, Server: server,
		next:   [2]uint32{seed*2654435761 + 12345, seed*40503 + 987654321},
		ipid:   [2]uint16{uint16(seed * 7), uint16(seed * 13)},
		Window: 502,
	}
}

// Side is who sends a segment.
type Side int

const (
	FromClient Side = 0
	FromServer Side = 1
)

// Segment builds the next segment from side with flags and n payload bytes, as raw
// IP, and advances the sender's sequence number.
func (c *Conv) Segment(from Side, flags packet.TCPFlags, n int) []byte {
	b := c.SegmentAt(from, flags, c.next[from], n)
	adv := uint32(n)
	if flags&(packet.SYN|packet.FIN) != 0 {
		adv++
	}
	c.next[from] += adv
	return b
}

// SegmentAt builds a segment from side starting at sequence number seq, without
// advancing the sender: a retransmission, or the SYN-ACK that repeats a SYN in a
// simultaneous open. An ACK acknowledges everything the other side has sent.
func (c *Conv) SegmentAt(from Side, flags packet.TCPFlags, seq uint32, n int) []byte {
	src, dst := c.Client, c.Server
	if from == FromServer {
		src, dst = dst, src
	}
	s := packet.TCPSpec{
		Src: src, Dst: dst, Seq: seq, Flags: flags, Window: c.Window,
		IPID: c.ipid[from], DontFrag: true,
	}
	c.ipid[from]++
	if flags&packet.ACK != 0 {
		s.Ack = c.next[1-from]
	}
	if flags&packet.SYN != 0 {
		s.Window = 64240
		s.Options = packet.TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true}
	}
	if n > 0 {
		s.Payload = payload(n)
	}
	return packet.AppendTCP(nil, s)
}

// Next is the sequence number side sends next.
func (c *Conv) Next(from Side) uint32 { return c.next[from] }

// KeepAlive builds a TCP keep-alive probe from side: an ACK whose sequence number is
// one below the next one, with no data (RFC 1122 4.2.3.6), which does not advance
// the sequence.
func (c *Conv) KeepAlive(from Side) []byte {
	src, dst := c.Client, c.Server
	if from == FromServer {
		src, dst = dst, src
	}
	s := packet.TCPSpec{
		Src: src, Dst: dst, Seq: c.next[from] - 1, Ack: c.next[1-from], Flags: packet.ACK,
		Window: c.Window, IPID: c.ipid[from], DontFrag: true,
	}
	c.ipid[from]++
	return packet.AppendTCP(nil, s)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// Recorder collects packets on named capture interfaces and writes them as pcapng,
// each packet wrapped in an Ethernet frame.
type Recorder struct {
	ifaces []capture.Interface
	byName map[string]int
	pkts   []recorded
}

type recorded struct {
	iface int
	t     time.Time
	frame []byte
}

// NewRecorder declares the capture interfaces, named as the firewall interfaces
// they stand for, so that replay maps each packet to its ingress interface.
func NewRecorder(names ...string) *Recorder {
	r := &Recorder{byName: make(map[string]int)}
	for i, n := range names {
		r.ifaces = append(r.ifaces, capture.Interface{Name: n, Link: packet.LinkEthernet})
		r.byName[n] = i
	}
	return r
}

var (
	macA = [6]byte{0x00, 0x1b, 0x21, 0x0a, 0x00, 0x01}
	macB = [6]byte{0x00, 0x1b, 0x21, 0x0b, 0x00, 0x02}
)

// Add records ipPacket arriving on iface at t.
func (r *Recorder) Add(iface string, t time.Time, ipPacket []byte) {
	i, ok := r.byName[iface]
	if !ok {
		panic("synth: unknown interface " + iface) // a bug in a scenario, not input
	}
	r.pkts = append(r.pkts, recorded{iface: i, t: t, frame: packet.AppendEthernet(nil, macA, macB, nil, ipPacket)})
}

// Len is the number of packets recorded.
func (r *Recorder) Len() int { return len(r.pkts) }

// WritePcapNG writes the packets, sorted by time (stable, so packets recorded at the
// same instant keep their order).
func (r *Recorder) WritePcapNG(w interface{ Write([]byte) (int, error) }) error {
	sortByTime(r.pkts)
	nw, err := capture.NewNgWriter(w, r.ifaces)
	if err != nil {
		return err
	}
	for _, p := range r.pkts {
		if err := nw.WritePacket(p.iface, p.t.UnixNano(), p.frame, len(p.frame), ""); err != nil {
			return err
		}
	}
	return nw.Close()
}

func sortByTime(p []recorded) {
	slices.SortStableFunc(p, func(a, b recorded) int { return a.t.Compare(b.t) })
}

// OffloadedSend is a TCP handshake from client to server, then an n-byte send from
// the server as a capture on the server shows it when its NIC does the
// segmenting (TSO, BIG TCP): one IPv4 packet whose total length field is 0. Then
// the client acknowledges all of it. The windows are scaled so that n fits.
func OffloadedSend(client, server netip.AddrPort, n int) [][]byte {
	c := NewConv(client, server, 1)
	c.Window = 65535
	syn := c.Segment(FromClient, packet.SYN, 0)
	synAck := c.Segment(FromServer, packet.SYN|packet.ACK, 0)
	ack := c.Segment(FromClient, packet.ACK, 0)
	send := c.Segment(FromServer, packet.ACK|packet.PSH, n)
	send[2], send[3] = 0, 0
	return [][]byte{syn, synAck, ack, send, c.Segment(FromClient, packet.ACK, 0)}
}
