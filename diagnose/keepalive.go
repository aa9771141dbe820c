package diagnose

import (
	"time"

	"keepstate/packet"
)

// KeepAlive is one TCP keep-alive probe (RFC 1122 4.2.3.6): after the connection
// was idle, an ACK whose sequence number is one below the sender's next one, with
// no data or one garbage byte, which the peer answers with a plain ACK.
type KeepAlive struct {
	Time time.Time `json:"time"`
	From string    `json:"from"` // "client" or "server"
	// IdleBefore is how long the connection was silent before the probe.
	IdleBefore time.Duration `json:"idle_before_ns"`
	Answered   bool          `json:"answered"`
	// AnswerDelay is how long the answer took; 0 when unanswered.
	AnswerDelay time.Duration `json:"answer_delay_ns,omitempty"`
	// Retry: the previous packet was an unanswered probe from the same side, so
	// IdleBefore is the retry interval, not the keep-alive time.
	Retry bool `json:"retry,omitempty"`
	index int  // position in the connection's packets
}

// keepAliveAnswerWithin is how soon an answer must follow a probe to count as its
// answer: a peer answers at once, from its kernel.
const keepAliveAnswerWithin = 10 * time.Second

// findKeepAlives scans one TCP connection's packets in time order. client is the
// client endpoint; minIdle is how long the connection must have been silent before
// a packet can be a probe.
func findKeepAlives(ps []*Packet, clientSide func(*Packet) bool, minIdle time.Duration) []KeepAlive {
	var out []KeepAlive
	var next [2]uint32 // next sequence number per direction (0: client)
	var known [2]bool
	for i, p := range ps {
		dir := 1
		if clientSide(p) {
			dir = 0
		}
		if i > 0 && known[dir] && isProbe(p, next[dir]) {
			idle := time.Duration(p.Time - ps[i-1].Time)
			if idle >= minIdle {
				ka := KeepAlive{Time: utc(p.Time), From: [2]string{"client", "server"}[dir], IdleBefore: idle, index: i}
				if n := len(out); n > 0 && out[n-1].index == i-1 && !out[n-1].Answered && out[n-1].From == ka.From {
					ka.Retry = true
				}
				if j := i + 1; j < len(ps) {
					q := ps[j]
					if clientSide(q) != (dir == 0) && q.Flags&packet.ACK != 0 && q.PayloadLen == 0 &&
						q.Ack == next[dir] && time.Duration(q.Time-p.Time) <= keepAliveAnswerWithin {
						ka.Answered, ka.AnswerDelay = true, time.Duration(q.Time-p.Time)
					}
				}
				out = append(out, ka)
			}
		}
		// Advance the sender's next sequence number (serial arithmetic: only
		// forward, so probes and retransmissions never move it back).
		end := p.Seq + uint32(p.PayloadLen)
		if p.Flags&(packet.SYN|packet.FIN) != 0 {
			end++
		}
		if !known[dir] || int32(end-next[dir]) > 0 {
			next[dir], known[dir] = end, true
		}
	}
	return out
}

// isProbe reports whether p looks like a keep-alive probe from a sender whose next
// sequence number is next.
func isProbe(p *Packet, next uint32) bool {
	return p.Flags&(packet.SYN|packet.FIN|packet.RST) == 0 && p.Flags&packet.ACK != 0 &&
		p.PayloadLen <= 1 && p.Seq == next-1
}

// keepAliveTime estimates the keep-alive time of a connection: the median idle time
// before the probes that open a probing round (retries excluded). 0 without probes.
func keepAliveTime(kas []KeepAlive) time.Duration {
	var v []int64
	for _, k := range kas {
		if !k.Retry {
			v = append(v, int64(k.IdleBefore))
		}
	}
	return time.Duration(median(v))
}
