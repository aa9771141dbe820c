// Package reason is the one list of reasons a packet is dropped or rejected.
//
// Every verdict that does not pass a packet carries exactly one Reason. The same
// identifiers name counters, JSON fields, metrics labels and the text of the debug
// log, so an operator who sees "out_of_window" in a metric finds the same word in the
// logs and in `keepstate replay --json`.
package reason

// Reason says why a packet was not accepted. The zero value, None, is the reason of
// an accepted packet.
type Reason uint8

const (
	None Reason = iota

	// Connection tracking.
	HandshakeNotCompleted   // TCP packet other than SYN for no known connection (strict mode)
	HandshakeWrongDirection // SYN-ACK, ACK or data sent by the wrong side for the handshake's stage
	StateExpired            // packet for a connection whose state timed out or closed recently
	OutOfWindow             // TCP sequence or acknowledgement outside the tracked window
	InvalidTCPFlags         // a flag combination no TCP stack sends (SYN+FIN, no flags, ...)
	InvalidState            // a valid segment that the connection's state does not allow
	ICMPUnrelated           // ICMP error quoting a packet of no tracked connection
	ConnectionLimit         // per-source concurrent or per-minute limit reached
	TableFull               // connection table full and nothing could be evicted

	// Policy.
	TrafficRule  // a Deny or Drop traffic rule matched
	DefaultRule  // no rule matched and the default rule denies
	AntiSpoofing // source address does not belong to the ingress interface
	RuleChanged  // connection closed because a new ruleset no longer permits it

	// Decoding.
	Malformed   // truncated or inconsistent headers
	BadChecksum // a checksum did not verify
	Fragment    // a non-first IP fragment that cannot be matched to a connection
	Unsupported // a link or network protocol keepstate does not inspect

	count // number of reasons; keep last
)

// Count is the number of distinct reasons, None included. Arrays of counters are
// sized with it.
const Count = int(count)

var ids = [count]string{
	None:                    "none",
	HandshakeNotCompleted:   "handshake_not_completed",
	HandshakeWrongDirection: "handshake_wrong_direction",
	StateExpired:            "state_expired",
	OutOfWindow:             "out_of_window",
	InvalidTCPFlags:         "invalid_tcp_flags",
	InvalidState:            "invalid_state",
	ICMPUnrelated:           "icmp_unrelated",
	ConnectionLimit:         "connection_limit",
	TableFull:               "table_full",
	TrafficRule:             "traffic_rule",
	DefaultRule:             "default_rule",
	AntiSpoofing:            "anti_spoofing",
	RuleChanged:             "rule_changed",
	Malformed:               "malformed",
	BadChecksum:             "bad_checksum",
	Fragment:                "fragment",
	Unsupported:             "unsupported",
}

// texts are the human words of the debug log, after "packet dropped: ". The first
// one is Kerio Control's own wording, which administrators search for.
var texts = [count]string{
	None:                    "accepted",
	HandshakeNotCompleted:   "3-way handshake not completed",
	HandshakeWrongDirection: "3-way handshake packet in wrong direction",
	StateExpired:            "connection state expired",
	OutOfWindow:             "TCP segment out of window",
	InvalidTCPFlags:         "invalid TCP flags",
	InvalidState:            "TCP packet invalid in connection state",
	ICMPUnrelated:           "ICMP error unrelated to any connection",
	ConnectionLimit:         "Connection limit reached",
	TableFull:               "connection table full",
	TrafficRule:             "Traffic rule",
	DefaultRule:             "Default rule",
	AntiSpoofing:            "Anti-spoofing",
	RuleChanged:             "connection closed by configuration change",
	Malformed:               "malformed packet",
	BadChecksum:             "bad checksum",
	Fragment:                "unmatched IP fragment",
	Unsupported:             "unsupported protocol",
}

// String returns the stable identifier, e.g. "handshake_not_completed".
func (r Reason) String() string {
	if int(r) < len(ids) {
		return ids[r]
	}
	return "unknown"
}

// Text returns the words the debug log uses, e.g. "3-way handshake not completed".
func (r Reason) Text() string {
	if int(r) < len(texts) {
		return texts[r]
	}
	return "unknown reason"
}

// Parse returns the Reason whose identifier is id.
func Parse(id string) (Reason, bool) {
	for i, s := range ids {
		if s == id {
			return Reason(i), true
		}
	}
	return None, false
}

// All returns every reason but None, in a stable order.
func All() []Reason {
	out := make([]Reason, 0, Count-1)
	for r := Reason(1); r < count; r++ {
		out = append(out, r)
	}
	return out
}

// Counters counts packets per reason. It is a plain array so that the per-packet path
// adds to it without allocation; callers that share one across goroutines use
// atomic adds or keep one per worker and sum them.
type Counters [Count]uint64

// Total is the sum of every reason but None.
func (c *Counters) Total() uint64 {
	var n uint64
	for r := 1; r < Count; r++ {
		n += c[r]
	}
	return n
}

// Map returns the non-zero counts keyed by identifier, None excluded: the
// `drops_by_reason` object of the JSON outputs.
func (c *Counters) Map() map[string]uint64 {
	m := make(map[string]uint64)
	for r := 1; r < Count; r++ {
		if c[r] != 0 {
			m[ids[r]] = c[r]
		}
	}
	return m
}
