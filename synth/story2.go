package synth

import (
	"io"
	"net/netip"
	"time"

	"keepstate/packet"
)

// Story2 describes the capture of the second story: an application server (LAN,
// 10.0.1.10) keeps pooled connections to an Oracle database (DB, 10.0.2.20:1521). It
// uses them for an hour, then leaves them idle; the database's TCP keep-alive probes
// them every two hours (RFC 1122's default) and the application answers each probe.
// Hours later the application reuses a pooled connection.
type Story2 struct {
	Start      time.Time
	Conns      int
	KeepAlives []time.Time // when the database probed (every connection at once)
	Reuse      time.Time   // when the application used the pool again
	LastQuery  time.Time   // the last query before the pool went idle
	Interval   time.Duration
}

// KeepAliveInterval is the database's TCP keep-alive time: Linux's and RFC 1122's
// default of two hours.
const KeepAliveInterval = 2 * time.Hour

// WriteStory2 writes the second story's capture as pcapng, with capture interfaces
// named LAN and DB.
func WriteStory2(w io.Writer) (*Story2, error) {
	s := &Story2{
		Start:    time.Date(2007, 11, 8, 10, 0, 0, 0, time.UTC),
		Conns:    3,
		Interval: KeepAliveInterval,
	}
	app := netip.MustParseAddr("10.0.1.10")
	db := netip.MustParseAddrPort("10.0.2.20:1521")
	rec := NewRecorder("LAN", "DB")
	convs := make([]*Conv, s.Conns)
	for i := range convs {
		c := NewConv(netip.AddrPortFrom(app, uint16(31578+i)), db, uint32(100+i))
		convs[i] = c
		t := s.Start.Add(time.Duration(i) * time.Second)
		rec.Add("LAN", t, c.Segment(FromClient, packet.SYN, 0))
		rec.Add("DB", t.Add(400*time.Microsecond), c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		rec.Add("LAN", t.Add(800*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
	}
	// Queries every five minutes for an hour.
	query := func(c *Conv, t time.Time) {
		rec.Add("LAN", t, c.Segment(FromClient, packet.ACK|packet.PSH, 240))
		rec.Add("DB", t.Add(3*time.Millisecond), c.Segment(FromServer, packet.ACK|packet.PSH, 1400))
		rec.Add("LAN", t.Add(3300*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
	}
	for m := 5; m <= 60; m += 5 {
		for i, c := range convs {
			query(c, s.Start.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second))
		}
	}
	s.LastQuery = s.Start.Add(time.Hour + time.Duration(s.Conns-1)*time.Second)
	// Idle from 11:00. The database probes two hours after each connection's last
	// packet, and again two hours later; the application answers with an ACK.
	for k := 1; k <= 2; k++ {
		at := s.Start.Add(time.Hour + time.Duration(k)*s.Interval)
		s.KeepAlives = append(s.KeepAlives, at)
		for i, c := range convs {
			t := at.Add(time.Duration(i)*time.Second + 4*time.Millisecond)
			rec.Add("DB", t, c.KeepAlive(FromServer))
			rec.Add("LAN", t.Add(300*time.Microsecond), c.Segment(FromClient, packet.ACK, 0))
		}
	}
	// Half an hour after the last probe, the application takes a pooled connection.
	s.Reuse = s.KeepAlives[len(s.KeepAlives)-1].Add(30 * time.Minute)
	query(convs[0], s.Reuse)
	return s, rec.WritePcapNG(w)
}
