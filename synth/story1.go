package synth

import (
	"io"
	"net/netip"
	"time"

	"keepstate/packet"
)

// Story1 describes the capture of the first story: web servers (LAN, 10.1.0.0/24)
// log customers in through Tomcat (DMZ, 10.2.0.2:8080). A blade switch carries some
// connections' web-server-to-Tomcat packets around the firewall, so the firewall sees
// only Tomcat's side of them. The capture is what reached the firewall's ports while
// the old SonicWall, which did not enforce the handshake, still forwarded everything.
type Story1 struct {
	Start       time.Time
	Logins      int
	LeakedPorts map[uint16]bool // client ports of the connections the switch leaked
	Tomcat      netip.AddrPort
}

// Leaked is the number of logins whose requests went around the firewall.
func (s *Story1) Leaked() int { return len(s.LeakedPorts) }

const (
	story1Logins   = 30
	story1Interval = 4 * time.Second
	story1LastPort = 27779 // the port of the seed's log line
)

// story1Leaks decides, deterministically, which logins the switch leaks: about two
// in five, as "sometimes it works, sometimes it doesn't", and always the last one.
func story1Leaks(i int) bool { return (i*7+3)%5 < 2 }

// WriteStory1 writes the first story's capture as pcapng, with capture interfaces
// named LAN and DMZ like the firewall's interfaces.
func WriteStory1(w io.Writer) (*Story1, error) {
	s := &Story1{
		// The last login falls at 11:50:42 on 23 Sep 2012, the seed's log line.
		Start:       time.Date(2012, 9, 23, 11, 50, 42, 0, time.UTC).Add(-(story1Logins - 1) * story1Interval),
		Logins:      story1Logins,
		LeakedPorts: make(map[uint16]bool),
		Tomcat:      netip.MustParseAddrPort("10.2.0.2:8080"),
	}
	webServers := []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3")}
	rec := NewRecorder("LAN", "DMZ")
	for i := 0; i < s.Logins; i++ {
		port := uint16(story1LastPort - s.Logins + 1 + i)
		web := webServers[i%len(webServers)]
		if i == s.Logins-1 {
			web = webServers[0] // 10.1.0.2:27779, as in the seed
		}
		leaked := story1Leaks(i)
		if leaked {
			s.LeakedPorts[port] = true
		}
		c := NewConv(netip.AddrPortFrom(web, port), s.Tomcat, uint32(i+1))
		t := s.Start.Add(time.Duration(i) * story1Interval)
		at := func(ms float64) time.Time { return t.Add(time.Duration(ms * float64(time.Millisecond))) }
		// The web server's packets reach the firewall on LAN unless the switch leaks
		// them straight to the Tomcat subnet; Tomcat's replies always come via DMZ.
		client := func(ms float64, b []byte) {
			if !leaked {
				rec.Add("LAN", at(ms), b)
			}
		}
		server := func(ms float64, b []byte) { rec.Add("DMZ", at(ms), b) }

		client(0, c.Segment(FromClient, packet.SYN, 0))
		server(0.3, c.Segment(FromServer, packet.SYN|packet.ACK, 0))
		client(0.6, c.Segment(FromClient, packet.ACK, 0))
		client(1, c.Segment(FromClient, packet.ACK|packet.PSH, 310)) // POST /login
		server(6, c.Segment(FromServer, packet.ACK|packet.PSH, 52))  // the session token
		client(6.3, c.Segment(FromClient, packet.ACK, 0))
		client(50, c.Segment(FromClient, packet.FIN|packet.ACK, 0))
		server(50.3, c.Segment(FromServer, packet.FIN|packet.ACK, 0))
		client(50.6, c.Segment(FromClient, packet.ACK, 0))
	}
	return s, rec.WritePcapNG(w)
}
