package synth

import (
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"keepstate/packet"
)

// The captures below re-enact the incidents the insight detectors name, besides
// the two stories: each is one capture interface ("Internet", as the built-in
// configuration names its interface) and deterministic.

// heartbeat records a connection that sends a packet every second from start to
// end: capture time passes in replay only with packets, and connections expire
// only as it passes.
func heartbeat(rec *Recorder, start, end time.Time) {
	c := NewConv(netip.MustParseAddrPort("192.0.2.200:40000"), netip.MustParseAddrPort("192.0.2.201:7"), 77)
	rec.Add("Internet", start, c.Segment(FromClient, packet.SYN, 0))
	rec.Add("Internet", start.Add(time.Millisecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
	rec.Add("Internet", start.Add(2*time.Millisecond), c.Segment(FromClient, packet.ACK, 0))
	for t := start.Add(time.Second); t.Before(end); t = t.Add(time.Second) {
		rec.Add("Internet", t, c.Segment(FromClient, packet.ACK|packet.PSH, 8))
		rec.Add("Internet", t.Add(time.Millisecond), c.Segment(FromServer, packet.ACK, 0))
	}
}

// SYNFlood is a flood of SYNs from spoofed sources at one server, which answers
// each with a SYN-ACK that nobody completes.
type SYNFlood struct {
	Target    netip.AddrPort
	Sources   int           // distinct source addresses, in 198.18.0.0/15
	PerSecond int           // SYNs a second
	Duration  time.Duration // of the flood
	Tail      time.Duration // quiet time after it (for the half-open connections to time out)
	Start     time.Time
}

// WriteSYNFlood writes the flood as pcapng and returns the number of SYNs.
func WriteSYNFlood(w io.Writer, f SYNFlood) (syns int, err error) {
	rec := NewRecorder("Internet")
	heartbeat(rec, f.Start, f.Start.Add(f.Duration+f.Tail))
	step := time.Second / time.Duration(f.PerSecond)
	rng := rand.New(rand.NewPCG(uint64(f.Sources), uint64(f.PerSecond)))
	for t := f.Start; t.Before(f.Start.Add(f.Duration)); t = t.Add(step) {
		i := rng.IntN(f.Sources)
		src := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
		c := NewConv(netip.AddrPortFrom(src, uint16(1024+rng.IntN(60000))), f.Target, uint32(syns))
		rec.Add("Internet", t, c.Segment(FromClient, packet.SYN, 0))
		rec.Add("Internet", t.Add(200*time.Microsecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		syns++
	}
	return syns, rec.WritePcapNG(w)
}

// HostBurst is one host opening connections to a server one after another and
// keeping them all open: a client in a loop, or a proxy for many users.
type HostBurst struct {
	Client netip.Addr
	Server netip.AddrPort
	Conns  int
	Every  time.Duration
	Start  time.Time
	Tail   time.Duration
}

// WriteHostBurst writes the connections' handshakes and a request each.
func WriteHostBurst(w io.Writer, b HostBurst) error {
	rec := NewRecorder("Internet")
	end := b.Start.Add(time.Duration(b.Conns)*b.Every + b.Tail)
	heartbeat(rec, b.Start, end)
	for i := range b.Conns {
		t := b.Start.Add(time.Duration(i) * b.Every)
		c := NewConv(netip.AddrPortFrom(b.Client, uint16(10000+i)), b.Server, uint32(1000+i))
		rec.Add("Internet", t, c.Segment(FromClient, packet.SYN, 0))
		rec.Add("Internet", t.Add(100*time.Microsecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		rec.Add("Internet", t.Add(200*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
		rec.Add("Internet", t.Add(300*time.Microsecond), c.Segment(FromClient, packet.ACK|packet.PSH, 100))
		rec.Add("Internet", t.Add(400*time.Microsecond), c.Segment(FromServer, packet.ACK|packet.PSH, 200))
	}
	return rec.WritePcapNG(w)
}

// PathChange is Conns established connections exchanging data every 100 ms; At
// after the start, the servers' packets begin to cross a device that rewrites
// their sequence numbers (as a firewall randomising them does), so the firewall
// sees every server segment, and the clients' acknowledgements of them, jump by
// Shift.
type PathChange struct {
	Conns    int
	Start    time.Time
	At       time.Duration
	Duration time.Duration
	Shift    uint32
}

// WritePathChange writes the capture.
func WritePathChange(w io.Writer, p PathChange) error {
	rec := NewRecorder("Internet")
	convs := make([]*Conv, p.Conns)
	for i := range convs {
		c := NewConv(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i%200)}), uint16(30000+i)),
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(5 + i%3)}), 443), uint32(500+i))
		convs[i] = c
		t := p.Start.Add(time.Duration(i) * time.Millisecond)
		rec.Add("Internet", t, c.Segment(FromClient, packet.SYN, 0))
		rec.Add("Internet", t.Add(100*time.Microsecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		rec.Add("Internet", t.Add(200*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
	}
	shifted := false
	for t := p.Start.Add(100 * time.Millisecond); t.Before(p.Start.Add(p.Duration)); t = t.Add(100 * time.Millisecond) {
		if !shifted && t.Sub(p.Start) >= p.At {
			shifted = true
			for _, c := range convs {
				c.next[FromServer] += p.Shift
			}
		}
		for i, c := range convs {
			at := t.Add(time.Duration(i) * 100 * time.Microsecond)
			rec.Add("Internet", at, c.Segment(FromClient, packet.ACK|packet.PSH, 120))
			rec.Add("Internet", at.Add(30*time.Microsecond), c.Segment(FromServer, packet.ACK|packet.PSH, 900))
			rec.Add("Internet", at.Add(60*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
		}
	}
	return rec.WritePcapNG(w)
}

// Backscatter is SYN-ACKs from servers on the Internet to addresses of ours that
// never sent them a SYN: the answers to SYNs someone spoofed with our addresses.
func WriteBackscatter(w io.Writer, ours netip.Prefix, n int, start time.Time) error {
	rec := NewRecorder("Internet")
	heartbeat(rec, start, start.Add(time.Duration(n)*100*time.Millisecond+time.Second))
	rng := rand.New(rand.NewPCG(uint64(n), 99))
	base := ours.Addr().As4()
	for i := range n {
		victim := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + rng.IntN(200))}), []uint16{80, 443, 25}[rng.IntN(3)])
		dst := base
		dst[3] = byte(rng.IntN(256))
		c := NewConv(netip.AddrPortFrom(netip.AddrFrom4(dst), uint16(1024+rng.IntN(60000))), victim, uint32(9000+i))
		c.Segment(FromClient, packet.SYN, 0) // the spoofed SYN, never seen here
		rec.Add("Internet", start.Add(time.Duration(i)*100*time.Millisecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
	}
	return rec.WritePcapNG(w)
}
