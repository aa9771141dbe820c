package synth

import (
	"io"
	"net/netip"
	"time"

	"keepstate/packet"
)

// Behaviour is a TCP conversation that real clients and servers produce and that a
// stateful firewall between them must pass whole, as Linux's conntrack does: the
// cases where keepstate and the kernel were found to disagree.
type Behaviour struct {
	Name  string
	Title string
	// Packets are raw IPv4 packets in the order the firewall sees them.
	Packets [][]byte
}

// Behaviours returns every behaviour, each on its own pair of addresses.
func Behaviours() []Behaviour {
	return []Behaviour{
		FastOpen(),
		FastOpenRetry(),
		SimultaneousOpen(),
		SplitHandshake(),
		MissingAcks(),
		ChallengeAck(),
		PortReuse(),
	}
}

func behaviourConv(n int) *Conv {
	client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 77, byte(n), 1}), uint16(40000+n))
	server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 78, byte(n), 1}), 443)
	return NewConv(client, server, uint32(7000+n))
}

// closeBoth appends an orderly close started by the client.
func closeBoth(c *Conv, pkts [][]byte) [][]byte {
	return append(pkts,
		c.Segment(FromClient, packet.FIN|packet.ACK, 0),
		c.Segment(FromServer, packet.FIN|packet.ACK, 0),
		c.Segment(FromClient, packet.ACK, 0))
}

// FastOpen is a TCP Fast Open connection (RFC 7413) whose cookie the server
// accepts: the SYN carries the request, the SYN-ACK acknowledges it, and the
// server sends its answer before the client's ACK of the SYN-ACK arrives.
func FastOpen() Behaviour {
	c := behaviourConv(1)
	pkts := [][]byte{
		c.Segment(FromClient, packet.SYN, 200),
		c.Segment(FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(FromServer, packet.ACK|packet.PSH, 1000),
		c.Segment(FromClient, packet.ACK, 0),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
		c.Segment(FromServer, packet.ACK|packet.PSH, 500),
		c.Segment(FromClient, packet.ACK, 0),
	}
	return Behaviour{Name: "fastopen", Title: "TCP Fast Open: data in the SYN, answered before the handshake's last ACK", Packets: closeBoth(c, pkts)}
}

// FastOpenRetry is a TCP Fast Open attempt whose SYN with data got no answer: the
// client retransmits the SYN without the data (as Linux does), the server
// acknowledges the SYN alone, and the client sends the data again after the
// handshake.
func FastOpenRetry() Behaviour {
	c := behaviourConv(2)
	isn := c.Next(FromClient)
	pkts := [][]byte{c.Segment(FromClient, packet.SYN, 200)}
	c.next[FromClient] = isn + 1 // the data was not received
	pkts = append(pkts,
		c.SegmentAt(FromClient, packet.SYN, isn, 0),
		c.Segment(FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(FromClient, packet.ACK|packet.PSH, 200),
		c.Segment(FromServer, packet.ACK|packet.PSH, 1000),
		c.Segment(FromClient, packet.ACK, 0),
	)
	return Behaviour{Name: "fastopen-retry", Title: "TCP Fast Open: the SYN with data unanswered, retransmitted without it", Packets: closeBoth(c, pkts)}
}

// SimultaneousOpen is RFC 9293 section 3.5's simultaneous open: both ends send a
// SYN, the SYNs cross, each answers the other's with a SYN-ACK that repeats its own
// SYN, and the side that was second sends data first.
func SimultaneousOpen() Behaviour {
	c := behaviourConv(3)
	a, b := c.Next(FromClient), c.Next(FromServer)
	pkts := [][]byte{
		c.Segment(FromClient, packet.SYN, 0),
		c.Segment(FromServer, packet.SYN, 0),
		c.SegmentAt(FromClient, packet.SYN|packet.ACK, a, 0),
		c.SegmentAt(FromServer, packet.SYN|packet.ACK, b, 0),
		c.Segment(FromServer, packet.ACK|packet.PSH, 300),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
		c.Segment(FromServer, packet.ACK, 0),
	}
	return Behaviour{Name: "simultaneous-open", Title: "simultaneous open: the SYNs cross (RFC 9293 section 3.5)", Packets: closeBoth(c, pkts)}
}

// SplitHandshake is a handshake whose responder answers the SYN with a SYN of its
// own, which the initiator acknowledges with a SYN-ACK and the responder with an
// ACK (the "split handshake" some stacks accept, and the simultaneous open seen from
// a side whose SYN-ACK was not needed); then the responder speaks first.
func SplitHandshake() Behaviour {
	c := behaviourConv(4)
	a := c.Next(FromClient)
	pkts := [][]byte{
		c.Segment(FromClient, packet.SYN, 0),
		c.Segment(FromServer, packet.SYN, 0),
		c.SegmentAt(FromClient, packet.SYN|packet.ACK, a, 0),
		c.Segment(FromServer, packet.ACK, 0),
		c.Segment(FromServer, packet.ACK|packet.PSH, 300),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
		c.Segment(FromServer, packet.ACK, 0),
	}
	return Behaviour{Name: "split-handshake", Title: "split handshake: SYN answered by SYN, then SYN-ACK and ACK", Packets: closeBoth(c, pkts)}
}

// MissingAcks is a bulk transfer from the server of which the firewall (or the
// capture) never saw five of the client's acknowledgements: the server, which got
// them, sends on beyond the window the firewall last saw the client allow.
func MissingAcks() Behaviour {
	c := behaviourConv(5)
	c.Window = 64 // scaled by 2^7: 8192 bytes, four segments
	pkts := [][]byte{
		c.Segment(FromClient, packet.SYN, 0),
		c.Segment(FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(FromClient, packet.ACK, 0),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
	}
	for flight := 1; flight <= 20; flight++ {
		pkts = append(pkts,
			c.Segment(FromServer, packet.ACK, 1000),
			c.Segment(FromServer, packet.ACK|packet.PSH, 1000))
		ack := c.Segment(FromClient, packet.ACK, 0)
		if flight < 5 || flight > 9 {
			pkts = append(pkts, ack)
		}
	}
	return Behaviour{Name: "missing-acks", Title: "bulk transfer of which five of the receiver's ACKs never reached the firewall", Packets: closeBoth(c, pkts)}
}

// ChallengeAck is a client that opens a new connection on the ports of one the
// server still holds (the client restarted): the server answers the SYN with a
// challenge ACK from the old connection (RFC 5961 section 4), the client resets
// the old connection with it, retransmits its SYN a second later and the
// connection opens.
func ChallengeAck() Behaviour {
	old := behaviourConv(6)
	c := behaviourConv(6)
	c.next[FromClient] += 1 << 30 // a new initial sequence number
	syn := c.SegmentAt(FromClient, packet.SYN, c.Next(FromClient), 0)
	challenge := old.Segment(FromServer, packet.ACK, 0)
	rst := old.SegmentAt(FromClient, packet.RST, old.Next(FromClient), 0)
	pkts := [][]byte{syn, challenge, rst,
		c.Segment(FromClient, packet.SYN, 0),
		c.Segment(FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
		c.Segment(FromServer, packet.ACK|packet.PSH, 300),
		c.Segment(FromClient, packet.ACK, 0),
	}
	return Behaviour{Name: "challenge-ack", Title: "a new SYN on the ports of a connection the server still holds: challenge ACK, RST, SYN again", Packets: closeBoth(c, pkts)}
}

// PortReuse is a client that opens a new connection on the ports of an old one
// whose end the firewall never saw (the client rebooted; the server had long
// closed its side): the firewall still holds the old connection, ignores the new
// SYN as it must (it may belong to the old one), and has to follow the server's
// SYN-ACK into the new connection.
func PortReuse() Behaviour {
	old := behaviourConv(7)
	pkts := [][]byte{
		old.Segment(FromClient, packet.SYN, 0),
		old.Segment(FromServer, packet.SYN|packet.ACK, 0),
		old.Segment(FromClient, packet.ACK, 0),
		old.Segment(FromClient, packet.ACK|packet.PSH, 100),
		old.Segment(FromServer, packet.ACK|packet.PSH, 400),
		old.Segment(FromClient, packet.ACK, 0),
	}
	c := behaviourConv(7)
	c.next[FromClient] += 1 << 31 // new initial sequence numbers
	c.next[FromServer] += 1 << 30
	pkts = append(pkts,
		c.Segment(FromClient, packet.SYN, 0),
		c.Segment(FromServer, packet.SYN|packet.ACK, 0),
		c.Segment(FromClient, packet.ACK, 0),
		c.Segment(FromClient, packet.ACK|packet.PSH, 100),
		c.Segment(FromServer, packet.ACK|packet.PSH, 300),
		c.Segment(FromClient, packet.ACK, 0),
	)
	return Behaviour{Name: "port-reuse", Title: "a new connection on the ports of an old one whose end the firewall missed", Packets: closeBoth(c, pkts)}
}

// WriteBehaviour writes b as a pcapng capture on one interface, a millisecond
// between packets.
func WriteBehaviour(w io.Writer, b Behaviour) error {
	rec := NewRecorder("tap")
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range b.Packets {
		rec.Add("tap", t, p)
		t = t.Add(time.Millisecond)
	}
	return rec.WritePcapNG(w)
}

// RepliesOnly is a connection of which the firewall sees only the server's side
// (the first story: a switch carries the client's packets around it), from the
// SYN-ACK on. In loose mode keepstate picks it up from the SYN-ACK; Linux finds a
// SYN-ACK without its SYN invalid and picks the connection up from the next
// packet. A deliberate difference: see docs/conformance.md.
func RepliesOnly() Behaviour {
	c := behaviourConv(20)
	c.Segment(FromClient, packet.SYN, 0)
	pkts := [][]byte{c.Segment(FromServer, packet.SYN|packet.ACK, 0)}
	c.Segment(FromClient, packet.ACK, 0)
	c.Segment(FromClient, packet.ACK|packet.PSH, 300)
	pkts = append(pkts, c.Segment(FromServer, packet.ACK|packet.PSH, 52))
	c.Segment(FromClient, packet.ACK, 0)
	c.Segment(FromClient, packet.FIN|packet.ACK, 0)
	pkts = append(pkts, c.Segment(FromServer, packet.FIN|packet.ACK, 0))
	return Behaviour{Name: "replies-only", Title: "only the server's packets cross the firewall, from the SYN-ACK on", Packets: pkts}
}
