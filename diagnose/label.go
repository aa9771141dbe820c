package diagnose

import (
	"fmt"

	"keepstate/conntrack"
	"keepstate/dataplane/replay"
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
	meta    conntrack.Meta // the connection's rule and its options, when tracked
}

// replayVerdicts runs one capture through a fresh engine built from pol, on the
// capture's clock, and returns the decision on each packet indexed by its 1-based
// position in the file (index 0 is unused). Replaying one side's capture is the
// firewall's view had it stood there: it holds both directions of every packet
// that crossed, and the packets only that side saw.
//
// The ingress interface is inferred from the source address (replay's
// InferIngress): a capture interface named like a firewall interface would be right
// for a capture of what arrived at each port, wrong for a tap that sees both
// directions, whose replies would look spoofed. A capture damaged partway keeps the
// verdicts up to the damage; ReadCapture reports where it stopped.
func replayVerdicts(path string, pol *Policy) ([]verdict, error) {
	eng, err := pol.engine()
	if err != nil {
		return nil, err
	}
	out := []verdict{{}}
	observe := func(_ int64, _ *packet.Parsed, d *firewall.Decision) {
		v := verdict{action: d.Action, reason: d.Reason, seen: true, state: d.Conn.State, tracked: d.Conn.ID != 0, meta: d.Conn.Meta}
		if d.Reason == reason.StateExpired && d.Conn.Timeout > 0 {
			v.timeout = fmt.Sprintf("%s %d s", firewall.TimeoutWords(eng.Ruleset(), &d.Conn), firewall.Seconds(d.Conn.Timeout))
		}
		out = append(out, v)
	}
	if _, err := replay.Run([]string{path}, replay.Options{Engine: eng, InferIngress: true, Observe: observe}); err != nil {
		return nil, err
	}
	return out, nil
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
