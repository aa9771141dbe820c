package logging_test

import (
	"net/netip"
	"os"
	"time"

	"keepstate/logging"
	"keepstate/packet"
	"keepstate/reason"
)

// The engine fills a PacketEvent for each drop; the Logger decides whether the
// debug log shows it (DropFilter, rate limit) and only then formats it.
func ExampleLogger() {
	l := logging.New(logging.Config{
		Debug:     logging.Sink{Text: os.Stdout},
		Location:  time.UTC,
		Drops:     logging.AnyDrop(), // "Packets dropped for any reason"
		DropRate:  10,                // lines per second on average
		DropBurst: 1,
	})
	p := &packet.Parsed{
		IPVersion: 4, Proto: packet.ProtoTCP, IPLen: 40,
		Src: netip.MustParseAddr("10.0.2.10"), Dst: netip.MustParseAddr("10.0.1.5"),
		SrcPort: 1521, DstPort: 31578, TCPFlags: packet.ACK, Seq: 100, Ack: 200, Window: 512,
	}
	t0 := time.Date(2007, 11, 7, 13, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ { // three keep-alives in the same instant: two are suppressed
		l.Drop(&logging.PacketEvent{
			Time: t0, Iface: "DB", P: p, Reason: reason.StateExpired,
			Idle: 2 * time.Hour, Timeout: time.Hour, TimeoutName: "TcpEstablishedTimeout",
		})
	}
	l.Close() // reports what was suppressed; os.Stdout itself stays open
	// Output:
	// [07/Nov/2007 13:00:00] {pktdrop} packet dropped: connection state expired (idle 7200 s > TcpEstablishedTimeout 3600 s) (from DB, proto:TCP, len:40, 10.0.2.10:1521 -> 10.0.1.5:31578, flags:[ ACK ], seq:100 ack:200, win:512, tcplen:0)
	// [07/Nov/2007 13:00:00] {pktdrop} 2 drop messages suppressed in the last 1 s (state_expired: 2)
}

// A daemon writes each log to its own size-rotated file: debug.log, debug.log.1, ...
func ExampleNewRotatingFile() {
	dir, _ := os.MkdirTemp("", "keepstate-logs")
	defer os.RemoveAll(dir)
	debug, err := logging.NewRotatingFile(dir+"/debug.log", 10<<20, 5)
	if err != nil {
		panic(err)
	}
	l := logging.New(logging.Config{Debug: logging.Sink{Text: debug}, Drops: logging.AnyDrop()})
	defer l.Close() // closes debug.log too
	// Output:
}
