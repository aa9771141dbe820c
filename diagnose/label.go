package diagnose

import (
	"fmt"
	"time"

	"keepstate/capture"
	"keepstate/config"
	"keepstate/conntrack"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// verdict is the engine's decision on one packet, as far as the diagnostics need it.
type verdict struct {
	action  firewall.Action
	reason  reason.Reason
	timeout string // for state_expired: the timeout that ended the connection
	seen    bool
	// state is the connection's state after the packet, when tracked is true.
	state   conntrack.State
	tracked bool
}

// expireEvery is how much capture time may pass between full expiry sweeps of the
// engine's table, as the replay feeder does.
const expireEvery = int64(time.Second)

// replayVerdicts runs one capture through a fresh engine built from cfg, on the
// capture's clock, and returns the decision on each packet indexed by its 1-based
// position in the file (index 0 is unused). Replaying one side's capture is the
// firewall's view had it stood there: it holds both directions of every packet
// that crossed, and the packets only that side saw.
//
// The ingress interface is always inferred from the source address. package
// replay maps a pcapng interface name to the firewall interface of that name,
// right for a capture of what arrived at each port, wrong for a tap that sees
// both directions: the replies would look spoofed.
func replayVerdicts(path string, cfg *config.Config) ([]verdict, error) {
	eng, err := firewall.New(cfg, firewall.Options{})
	if err != nil {
		return nil, err
	}
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	out := []verdict{{}}
	var p packet.Parsed
	var lastExpire int64
	for {
		pkt, err := rd.Next()
		if err != nil {
			// A capture damaged partway keeps the verdicts up to the damage;
			// ReadCapture reports where it stopped.
			return out, nil
		}
		if pkt.Time-lastExpire >= expireEvery {
			eng.Expire(pkt.Time)
			lastExpire = pkt.Time
		}
		d := eng.Decide(pkt.Data, pkt.Link, -1, pkt.Time, &p)
		v := verdict{action: d.Action, reason: d.Reason, seen: true, state: d.Conn.State, tracked: d.Conn.ID != 0}
		if d.Reason == reason.StateExpired && d.Conn.Timeout > 0 {
			v.timeout = fmt.Sprintf("%s %d s", firewall.TimeoutName(d.Conn.EndedState, true), firewall.Seconds(d.Conn.Timeout))
		}
		out = append(out, v)
	}
}

// labelFor words the engine's verdict on a packet seen on one side only: the
// firewall would have dropped it, or would have passed it, so it never got there.
func labelFor(v verdict, device string) string {
	if !v.seen {
		return ""
	}
	if v.action == firewall.Accept {
		return "never reached " + device
	}
	verb := "dropped"
	if v.action == firewall.Reject {
		verb = "refused"
	}
	s := fmt.Sprintf("%s by %s: %s", verb, device, v.reason)
	if v.timeout != "" {
		s += " (" + v.timeout + ")"
	}
	return s
}
