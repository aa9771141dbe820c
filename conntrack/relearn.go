package conntrack

import "keepstate/packet"

// relearning reports whether e was taken over and is learning its windows again:
// liberal, and not a pickup (a picked-up connection is never assured while it is
// liberal).
func (e *entry) relearning() bool { return e.sf&(fLiberal|fAssured) == fLiberal|fAssured }

// Relearning is liberal about data and acknowledgements, never about a RST or a
// FIN, which end a connection: they are checked against what is known of the
// sender, and never teach the table the sender's position themselves. A
// direction not seen since the takeover is known only from what the other side
// acknowledged (the next sequence number it expects, and its window):
//
//   - known (the other side was seen): the RST or FIN is checked against that
//     window as on any established connection: beyond it, dropped; older than
//     it, passed without a state change; a RST closes only at exactly the
//     expected number (RFC 5961);
//   - unknown (neither side was seen yet): a RST is dropped (out_of_window),
//     which costs nothing, since the end hosts send it again once either of them
//     speaks; a FIN passes but changes nothing (it is "ignored", as the state
//     machine ignores packets it cannot place), so that a close is not held up
//     by a receiver that has nothing to say, and the receiver, which knows the
//     sequence numbers, decides whether it is real.

// unverifiable reports whether p, a RST or FIN travelling in direction d of a
// relearning connection, cannot be checked yet: neither direction was seen since
// the takeover.
func (e *entry) unverifiable(d Dir, p *packet.Parsed) bool {
	return e.relearning() && p.TCPFlags&(packet.RST|packet.FIN) != 0 && e.tcp[d].maxwin == 0 && e.tcp[1-d].maxwin == 0
}

// awaitsSynAck reports whether e is a TCP connection that has sent its SYN and
// had no answer: it is restored with its windows (see restoreEntry).
func (e *entry) awaitsSynAck() bool {
	st := e.state()
	return e.key.Proto == uint8(packet.ProtoTCP) && (st == StateSynSent || st == StateSynSent2)
}
