// Package diagnose answers, from captures and a configuration, the questions that
// solved the README's two incidents by hand:
//
//   - Diff: two captures taken on two sides of a device (a firewall, a switch):
//     which packets crossed, which were seen on one side only, which connections
//     take another path one way (asymmetric routing), and, with a configuration,
//     whether keepstate drops the one-sided packets or they never reached it.
//   - Advise: TCP keep-alives and idle gaps in one capture against the
//     configuration's idle timeouts: which connections a timeout cuts, the smallest
//     timeout that keeps them, and what that costs in memory.
//   - Explain: one packet walked through the engine's pipeline step by step.
//
// Connection state is never re-implemented here: whenever a question depends on
// what the firewall tracks, the captures are replayed through firewall.Engine.
package diagnose

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"

	"keepstate/capture"
	"keepstate/packet"
)

// Packet is what the diagnostics keep of one captured packet: its identity across
// captures and the TCP fields the keep-alive analysis reads. Non-IP and undecodable
// packets are counted in Capture.Skipped, not kept.
type Packet struct {
	Index      int   // 1-based position in its capture (as Wireshark numbers them)
	Time       int64 // Unix ns, capture clock
	Iface      string
	Src, Dst   netip.AddrPort // ports are 0 for protocols without ports; the echo id for ICMP echo
	Proto      packet.Proto
	Flags      packet.TCPFlags
	Seq, Ack   uint32
	PayloadLen int // TCP data or UDP payload length, as the headers state it
	IPID       uint32
	ICMPType   uint8
	// Key identifies the packet across captures: a hash of the bytes no router or
	// firewall changes (addresses, protocol, ports, TCP sequence, acknowledgement and
	// flags, ICMP type/code/id/sequence, payload length and its first bytes) and the
	// IP identification. TTL, checksums and link headers are left out.
	Key matchKey
}

// matchKey is a packet's identity across captures.
type matchKey struct {
	Hash uint64
	IPID uint32
}

// Capture is one capture file read into memory.
type Capture struct {
	Path    string
	Packets []Packet
	Total   int   // packets in the file, skipped ones included
	Skipped int   // not IP, or not decodable
	Err     error // why reading stopped before the end, if it did
}

// payloadBytesHashed is how much payload goes into a packet's key: enough to tell
// apart datagrams with equal headers, little enough that captures with different
// snapshot lengths still agree.
const payloadBytesHashed = 32

// ReadCapture reads a pcap or pcapng file (gzip or not). A file damaged partway is
// not an error: the packets before the damage are returned and Err says where
// reading stopped.
func ReadCapture(path string) (*Capture, error) {
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	c := &Capture{Path: path}
	var p packet.Parsed
	for {
		pkt, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.Err = fmt.Errorf("%s: stopped after %d packets: %w", path, c.Total, err)
			}
			return c, nil
		}
		c.Total++
		if p.DecodeWire(pkt.Data, pkt.Link, pkt.OrigLen) != nil || p.IPVersion == 0 {
			c.Skipped++
			continue
		}
		iface := ""
		if ifs := rd.Interfaces(); pkt.Iface >= 0 && pkt.Iface < len(ifs) {
			iface = ifs[pkt.Iface].Name
		}
		c.Packets = append(c.Packets, packetOf(&p, pkt.Data, c.Total, pkt.Time, iface))
	}
}

// packetOf keeps what the diagnostics need of a decoded packet; data is the frame
// p was decoded from.
func packetOf(p *packet.Parsed, data []byte, index int, t int64, iface string) Packet {
	q := Packet{
		Index: index, Time: t, Iface: iface, Proto: p.Proto, IPID: p.IPID,
		PayloadLen: p.PayloadLen, ICMPType: p.ICMPType,
	}
	sport, dport := p.SrcPort, p.DstPort
	switch p.Proto {
	case packet.ProtoTCP:
		q.Flags, q.Seq, q.Ack = p.TCPFlags, p.Seq, p.Ack
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if p.IsEchoRequest() || p.IsEchoReply() {
			sport, dport = p.ICMPID, p.ICMPID // an echo exchange is one "connection"
		}
	}
	q.Src = netip.AddrPortFrom(p.Src.Unmap(), sport)
	q.Dst = netip.AddrPortFrom(p.Dst.Unmap(), dport)
	q.Key = matchKey{Hash: invariantHash(p, data), IPID: p.IPID}
	return q
}

func invariantHash(p *packet.Parsed, data []byte) uint64 {
	h := fnv.New64a()
	var b [64]byte
	put := func(s []byte) { h.Write(s) }
	src, dst := p.Src.Unmap().As16(), p.Dst.Unmap().As16()
	put(src[:])
	put(dst[:])
	b[0] = byte(p.Proto)
	be16(b[1:], p.SrcPort)
	be16(b[3:], p.DstPort)
	be32(b[5:], p.Seq)
	be32(b[9:], p.Ack)
	b[13] = byte(p.TCPFlags)
	b[14], b[15] = p.ICMPType, p.ICMPCode
	be16(b[16:], p.ICMPID)
	be16(b[18:], p.ICMPSeq)
	be32(b[20:], uint32(p.PayloadLen))
	put(b[:24])
	if p.Frag != packet.LaterFragment && p.PayloadOffset > 0 && p.PayloadOffset <= len(data) {
		end := min(len(data), p.PayloadOffset+min(p.PayloadLen, payloadBytesHashed))
		put(data[p.PayloadOffset:end])
	}
	return h.Sum64()
}

func be16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }
func be32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
