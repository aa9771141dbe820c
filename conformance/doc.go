// Package conformance compares keepstate's connection tracking with the Linux
// kernel's, packet by packet: the TCP packets of a capture are replayed through a
// network namespace whose bridge hands every frame to the kernel's conntrack, and
// through keepstate's engine, and every packet on which the two disagree (one passes
// it, the other drops it) is reported.
//
// # Mapping of the settings
//
//	keepstate                         Linux (set in the namespace only)
//	Require3WayHandshake=1 (strict)   net.netfilter.nf_conntrack_tcp_loose=0
//	Require3WayHandshake=0 (loose)    net.netfilter.nf_conntrack_tcp_loose=1 (the kernel's default)
//	window checks on (always)         net.netfilter.nf_conntrack_tcp_be_liberal=0 (the default)
//	checksums not verified            net.netfilter.nf_conntrack_checksum=0
//	a drop                            conntrack found the packet invalid (ct state invalid),
//	                                  or the bridge refused it before conntrack saw it
//
// keepstate runs with its built-in permit-all rule and without anti-spoofing,
// connection limits or adaptive timeouts, so that connection tracking alone
// decides, as it does in the kernel's `ct state invalid drop`.
//
// # What is replayed
//
// Only TCP is compared. Every TCP packet of the capture whose headers were captured
// whole is re-framed as an untagged Ethernet frame (from Ethernet with VLAN tags,
// Linux cooked, raw IP or BSD loopback captures alike) and sent by its side of the
// conversation into its own port: the sender of the first packet of a connection is
// its client side, and everything that host sends on that connection enters the
// bridge on the client port, the rest on the server port. Both sides see exactly the
// same frames in the same order. Packets are changed only where the capture could not
// have carried them as they were on the wire, and the same way for both:
//
//   - a packet the capture's snapshot length cut short is padded with zeros to its
//     length on the wire (payload bytes do not matter to connection tracking);
//   - an offloaded send whose IP header gives no length (TSO, GRO) gets its real
//     length;
//   - the IPv4 identification field or the IPv6 flow label carries a tag that
//     matches the frame that leaves the bridge to the frame that entered it (neither
//     field means anything to connection tracking), the IPv4 header checksum is
//     recomputed, and the DSCP bits are cleared (they mark what conntrack found
//     invalid: see below).
//
// Fragments and packets whose TCP header the capture cut are skipped on both sides
// and counted as such: the bridge reassembles fragments and cuts them again, so they
// cannot be matched one for one, and a header that was not captured cannot be
// replayed.
//
// # Time
//
// The kernel sees the replay in real time, a few milliseconds for a capture of
// thousands of packets, so none of its timeouts fire; keepstate's engine is given a
// clock that advances a microsecond per packet, for the same effect. Timeouts are out
// of scope here: the conntrack package's own tests cover them.
//
// # How the kernel's verdict is observed
//
// The namespace's forward chain is
//
//	ct state invalid counter ip dscp set cs7
//
// (and the same for IPv6) instead of `ct state invalid drop`: the kernel's
// conntrack updates its state in the prerouting hook, before the forward chain, and
// creates none for an invalid packet, so marking the packet there instead of
// dropping it changes nothing for the packets that follow. What it adds is that a
// frame that leaves the bridge unmarked passed, one that leaves marked would have
// been dropped by `ct state invalid drop`, and one that never leaves was refused by
// the bridge's own header checks before conntrack saw it. Every frame is therefore
// accounted for without waiting for a timeout, and the test TestMarkingDropsNothingElse
// checks on a real namespace that a chain that drops loses exactly the marked frames.
// The sender runs on one CPU, so the kernel's per-CPU receive backlog keeps the
// frames of both ports in the order they were sent.
package conformance
