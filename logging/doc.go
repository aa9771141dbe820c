// Package logging formats and writes keepstate's logs: the Kerio-style debug
// ({pktdrop}), filter, connection, warning and error lines, the same events as JSON
// lines, a rate limiter for drop messages that counts what it suppressed, and a
// size-rotated file writer for the daemon.
//
// Logging never decides anything. The engine fills a PacketEvent or ConnEvent with
// what it decided and why; this package only turns that into bytes. Drop logging is
// the hot path: a drop that the DropFilter does not select, or that the rate limiter
// refuses, costs a few comparisons and a counter increment, and no text is built.
//
// Line formats (timestamps in the Logger's location):
//
//	[23/Sep/2012 11:50:42] {pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP, len:92, 10.2.0.2:8080 -> 10.1.0.2:27779, flags:[ ACK PSH ], seq:2673204299 ack:173509679, win:27, tcplen:52)
//	[16/Apr/2013 10:51:00] PERMIT 'Local traffic' packet to LAN, proto:TCP, len:47, ip/port:195.39.55.4:41272 -> 192.168.1.11:3663, flags: ACK PSH, seq:1099972190 ack:3795090926, win:64036, tcplen:7
//	[16/Apr/2013 10:53:01] [ID] 613181 [Rule] NAT [Service] HTTP [Connection] TCP 192.168.1.140:1193 > 1.2.3.4:80 [Duration] 121 sec [Bytes] 1575/1290/2865 [Packets] 5/9/14
//	[16/Apr/2013 10:53:01] Connection limit per minute for source address '192.168.5.139' reached (limit: 600)
//
// As in Kerio Control, tcplen and udplen are the transport payload lengths and len
// is the IP total length.
package logging
