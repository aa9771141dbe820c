package synth

import (
	"io"
	"net/netip"
	"time"

	"keepstate/packet"
)

// KeepAliveSpec describes a capture of database traffic for the keep-alive advisor:
// pooled connections that go idle and are kept alive by the database's TCP
// keep-alive probes, and short connections an application uses once and abandons
// without closing them (the second story's cause), which a firewall keeps until
// their idle timeout ends.
type KeepAliveSpec struct {
	Start  time.Time
	Pooled int // idle connections probed by keep-alives
	// Interval is the keep-alive time: the probe comes this long after the last
	// packet (default 2 h, RFC 1122).
	Interval time.Duration
	Rounds   int // probe rounds per pooled connection (default 2)
	// Unanswered: no probe is answered (the firewall forgot the connection and
	// drops them); the database retries every Retry (default 75 s) nine times in
	// all, then resets the connection.
	Unanswered bool
	Retry      time.Duration
	// Abandoned connections open every AbandonEvery from Start+30 s on, carry one
	// query and fall silent without FIN.
	Abandoned    int
	AbandonEvery time.Duration
}

// KeepAliveCapture is what WriteKeepAlives wrote.
type KeepAliveCapture struct {
	Pooled    []netip.AddrPort // client endpoints of the pooled connections
	Abandoned []netip.AddrPort // client endpoints of the abandoned ones
	Database  netip.AddrPort
	// LastActivity is, per pooled connection, the time of its last packet before
	// the first probe round.
	LastActivity []time.Time
	Probes       int // probes sent in all
	End          time.Time
}

// keepAliveProbesUnanswered is how many probes Linux sends before giving up
// (tcp_keepalive_probes).
const keepAliveProbesUnanswered = 9

// WriteKeepAlives writes the capture as pcapng with one capture interface, "tap".
func WriteKeepAlives(w io.Writer, s KeepAliveSpec) (*KeepAliveCapture, error) {
	if s.Interval == 0 {
		s.Interval = KeepAliveInterval
	}
	if s.Rounds == 0 {
		s.Rounds = 2
	}
	if s.Retry == 0 {
		s.Retry = 75 * time.Second
	}
	out := &KeepAliveCapture{Database: netip.MustParseAddrPort("10.0.2.20:1521")}
	rec := NewRecorder("tap")
	last := s.Start
	add := func(t time.Time, b []byte) {
		rec.Add("tap", t, b)
		if t.After(last) {
			last = t
		}
	}
	// open runs a handshake and one query; it returns the time of the last packet.
	open := func(c *Conv, t time.Time) time.Time {
		add(t, c.Segment(FromClient, packet.SYN, 0))
		add(t.Add(400*time.Microsecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		add(t.Add(800*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
		q := t.Add(time.Second)
		add(q, c.Segment(FromClient, packet.ACK|packet.PSH, 240))
		add(q.Add(3*time.Millisecond), c.Segment(FromServer, packet.ACK|packet.PSH, 1400))
		add(q.Add(3300*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
		return q.Add(3300 * time.Microsecond)
	}
	app := netip.MustParseAddr("10.0.1.10")
	for i := 0; i < s.Pooled; i++ {
		client := netip.AddrPortFrom(app, uint16(31578+i))
		out.Pooled = append(out.Pooled, client)
		c := NewConv(client, out.Database, uint32(500+i))
		t := open(c, s.Start.Add(time.Duration(i)*time.Second))
		out.LastActivity = append(out.LastActivity, t)
		if s.Unanswered {
			probe := t.Add(s.Interval)
			for k := 0; k < keepAliveProbesUnanswered; k++ {
				add(probe, c.KeepAlive(FromServer))
				out.Probes++
				probe = probe.Add(s.Retry)
			}
			add(probe, c.Segment(FromServer, packet.RST, 0)) // a retry interval after the last probe
			continue
		}
		for k := 0; k < s.Rounds; k++ {
			probe := t.Add(s.Interval)
			add(probe, c.KeepAlive(FromServer))
			out.Probes++
			t = probe.Add(300 * time.Microsecond)
			add(t, c.Segment(FromClient, packet.ACK, 0))
		}
	}
	for j := 0; j < s.Abandoned; j++ {
		client := netip.AddrPortFrom(app, uint16(40000+j))
		out.Abandoned = append(out.Abandoned, client)
		c := NewConv(client, out.Database, uint32(9000+j))
		open(c, s.Start.Add(30*time.Second+time.Duration(j)*s.AbandonEvery))
	}
	out.End = last
	return out, rec.WritePcapNG(w)
}
