package diagnose

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"keepstate/capture"
	"keepstate/conntrack"
	"keepstate/dataplane/replay"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

// Step is one stage of the pipeline, as explain prints it.
type Step struct {
	Stage  string `json:"stage"`  // ingress, anti-spoofing, connection, rule N "name", default rule, new connection
	Result string `json:"result"` // pass, drop, found, none, match, no match, skipped, created, ...
	Detail string `json:"detail"`
}

// Explanation is one packet walked through the engine.
type Explanation struct {
	Packet  string `json:"packet"`
	Context string `json:"context,omitempty"` // for a packet of a capture: where it is
	Steps   []Step `json:"steps"`
	Action  string `json:"action"`
	Reason  string `json:"reason,omitempty"`
	Text    string `json:"reason_text,omitempty"`
	Rule    string `json:"rule,omitempty"` // the rule that decided, when one did
	// Mismatch is set when the rule walk and the engine's own matcher disagree,
	// which is a bug in keepstate worth reporting.
	Mismatch string `json:"mismatch,omitempty"`
}

// ExplainSpec walks the packet sp describes through a fresh engine built from pol
// (no connection tracked yet) at time now (Unix ns).
func ExplainSpec(pol *Policy, sp Spec, now int64) (*Explanation, error) {
	eng, err := pol.engine()
	if err != nil {
		return nil, err
	}
	in := -1
	if sp.Iface != "" {
		rs := eng.Ruleset()
		if in = rs.IfaceByName(sp.Iface); in < 0 {
			in = rs.IfaceByDevice(sp.Iface)
		}
		if in < 0 {
			var names []string
			for _, ifc := range rs.Interfaces() {
				names = append(names, ifc.Name)
			}
			return nil, fmt.Errorf("no interface %q in the configuration (it has %s)", sp.Iface, strings.Join(names, ", "))
		}
	}
	frame := sp.Build()
	x := explainPacket(eng, frame, len(frame), packet.LinkRaw, in, now)
	x.Packet = sp.String()
	return x, nil
}

// ExplainCapture replays a capture's packets 1 to n-1 through an engine built from
// pol, as `keepstate replay` does, then explains packet n in that context.
func ExplainCapture(pol *Policy, path string, n int) (*Explanation, error) {
	if n < 1 {
		return nil, fmt.Errorf("packet %d: packets are numbered from 1", n)
	}
	eng, err := pol.engine()
	if err != nil {
		return nil, err
	}
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var p packet.Parsed
	var d firewall.Decision
	var lastExpire int64
	ingress := replay.NewIngress(eng, nil)
	for i := 1; ; i++ {
		pkt, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s has %d packets, not %d", path, i-1, n)
			}
			return nil, fmt.Errorf("%s: reading packet %d: %w", path, i, err)
		}
		if pkt.Time-lastExpire >= replay.ExpireEvery {
			eng.Expire(pkt.Time)
			lastExpire = pkt.Time
		}
		in := ingress.Of(rd, &pkt)
		if i < n {
			eng.DecideCutInto(pkt.Data, pkt.OrigLen, pkt.Link, in, pkt.Time, &p, &d)
			continue
		}
		x := explainPacket(eng, pkt.Data, pkt.OrigLen, pkt.Link, in, pkt.Time)
		x.Context = fmt.Sprintf("packet %d of %s, captured at %s, after the %d before it were replayed",
			n, path, utc(pkt.Time).Format("2006-01-02 15:04:05.000000"), n-1)
		return x, nil
	}
}

// explainPacket runs one frame through eng and says what every stage did. The
// stages before connection tracking are pure questions to the ruleset; the rest is
// read off the engine's Decision, so the explanation is the engine's own verdict.
func explainPacket(eng *firewall.Engine, frame []byte, wireLen int, link packet.LinkType, in int, now int64) *Explanation {
	st := eng.Settings()
	rs := eng.Ruleset()
	var p packet.Parsed
	decodeErr := p.DecodeWire(frame, link, wireLen)
	x := &Explanation{Packet: parsedString(&p)}
	add := func(stage, result, format string, a ...any) {
		x.Steps = append(x.Steps, Step{Stage: stage, Result: result, Detail: fmt.Sprintf(format, a...)})
	}

	// Anti-spoofing runs first in the engine; ask the same question here, before
	// Decide changes the table.
	var spoofOK bool
	if decodeErr == nil {
		spoofOK = rs.SpoofOK(in, p.Src)
	}
	var d firewall.Decision
	eng.DecideCutInto(frame, wireLen, link, in, now, &p, &d)
	x.Action = d.Action.String()
	if d.Reason != reason.None {
		x.Reason, x.Text = d.Reason.String(), d.Reason.Text()
	}
	if d.DecodeErr != nil {
		add("decode", "drop", "%v", d.DecodeErr)
		return x
	}

	ifaces := rs.Interfaces()
	ifName := func(j int) string {
		if j >= 0 && j < len(ifaces) {
			return ifaces[j].Name
		}
		return "unknown"
	}
	if in >= 0 {
		add("ingress", "given", "%s", ifName(in))
	} else {
		add("ingress", "inferred", "%s, from the source address %s (not given, so anti-spoofing cannot be checked)", ifName(d.InIface), p.Src)
	}

	switch {
	case !st.AntiSpoofing:
		add("anti-spoofing", "off", "AntiSpoofing=0")
	case in < 0:
		add("anti-spoofing", "skipped", "the ingress interface is not known")
	case d.Reason == reason.AntiSpoofing:
		add("anti-spoofing", "drop", "%s does not belong to %s%s", p.Src, ifName(in), ifaceNets(&ifaces[in]))
		return x
	case spoofOK:
		add("anti-spoofing", "pass", "%s may arrive on %s%s", p.Src, ifName(in), ifaceNets(&ifaces[in]))
	}

	rulesTried := d.Rule != firewall.NoRule
	switch {
	case rulesTried:
		add("connection", "none", "%s", newConnWords(&p, &st))
	case d.Action == firewall.Accept && d.Conn.ID == 0:
		add("connection", "related", "an ICMP error about a tracked connection")
		return x
	case d.Action == firewall.Accept:
		add("connection", "found", "connection #%d, state %s, this packet in its %s direction: accepted without consulting the rules%s",
			d.Conn.ID, d.Conn.State, d.Conn.Dir, connOptionWords(rs, d.Conn.Meta))
		return x
	default:
		add("connection", "drop", "%s", trackDropWords(&d, &st, rs))
		return x
	}

	q := d.RuleQuery(&p)
	if d.Reversed {
		// The engine asked about the connection as it was opened: the other way round.
		why := "the rules permit this packet's connection the other way round (the lower port taken for the server when they permit both)"
		if p.TCPFlags&(packet.SYN|packet.ACK) == packet.SYN|packet.ACK {
			why = "a SYN-ACK is a reply"
		}
		add("orientation", "reply", "%s: the rules are asked about the connection %s > %s it belongs to",
			why, netip.AddrPortFrom(p.Dst, p.DstPort), netip.AddrPortFrom(p.Src, p.SrcPort))
	}
	matched := -1
	for i := range rs.NumRules() {
		rc := rs.Explain(i, &q)
		stage := fmt.Sprintf("rule %d %q", i+1, rc.Name)
		if !rc.Matched {
			add(stage, "no match", "%s: %s", rc.Field, rc.Detail)
			continue
		}
		add(stage, "match", "%s: %s", rs.Rule(i).Action, rc.Detail)
		matched = i
		break
	}
	if matched < 0 {
		add("default rule", "match", "%s: no rule matched", rs.DefaultAction())
	} else {
		x.Rule = fmt.Sprintf("%d %q", matched+1, rs.Rule(matched).Name)
	}
	engineRule := d.Rule
	if engineRule == firewall.DefaultRule {
		engineRule = -1
	}
	if engineRule != matched {
		x.Mismatch = fmt.Sprintf("the rule walk found rule index %d, the engine's matcher %d", matched, engineRule)
	}
	if matched >= 0 {
		if w := ruleOptionStep(rs, matched, &st, &d, &p); w != "" {
			result := "apply"
			if d.Action == firewall.Drop && !d.Created && (d.Reason == reason.HandshakeNotCompleted || d.Reason == reason.StateExpired) {
				result = "drop"
			}
			add("state options", result, "%s", w)
		}
	}
	switch {
	case d.Created:
		add("new connection", "created", "connection #%d, state %s%s", d.Conn.ID, d.Conn.State, connOptionWords(rs, d.Conn.Meta))
	case d.Action == firewall.Drop && d.Conn.Verdict == conntrack.Drop:
		add("new connection", "drop", "not created: %s (%s)", d.Reason, d.Reason.Text())
	}
	return x
}

// ifaceNets lists an interface's networks for the anti-spoofing step.
func ifaceNets(ifc *policy.Interface) string {
	var nets []string
	for _, p := range ifc.Addresses {
		nets = append(nets, p.Masked().String())
	}
	for _, p := range ifc.Networks {
		nets = append(nets, p.String())
	}
	if len(nets) == 0 {
		if ifc.Group == policy.Internet {
			return " (an Internet interface: any address no other interface owns)"
		}
		return " (no networks configured: anything may)"
	}
	if ifc.Group == policy.Internet {
		return fmt.Sprintf(" (an Internet interface: any address no other interface owns; its own %s)", strings.Join(nets, ", "))
	}
	return " (" + strings.Join(nets, ", ") + ")"
}

// newConnWords says why a packet with no tracked connection goes to the rules.
func newConnWords(p *packet.Parsed, st *firewall.Settings) string {
	const pre = "no tracked connection; "
	switch p.Proto {
	case packet.ProtoTCP:
		if p.TCPFlags&(packet.SYN|packet.ACK) == packet.SYN {
			return pre + "a SYN may open one: the rules decide"
		}
		if st.Conntrack.Strict {
			return pre + "not a SYN, but some rule has Handshake=loose: the rules decide whether the connection is picked up mid-stream"
		}
		return pre + "Require3WayHandshake=0 picks the connection up mid-stream: the rules decide"
	case packet.ProtoUDP:
		return pre + "a UDP datagram opens one: the rules decide"
	case packet.ProtoICMP, packet.ProtoICMPv6:
		return pre + "an ICMP query opens one: the rules decide"
	}
	return pre + "the first packet opens one: the rules decide"
}

// trackDropWords explains a drop decided by connection tracking.
func trackDropWords(d *firewall.Decision, st *firewall.Settings, rs *policy.Ruleset) string {
	r := d.Reason
	s := fmt.Sprintf("%s: %s", r, r.Text())
	switch r {
	case reason.HandshakeNotCompleted:
		if st.Conntrack.Strict {
			s += " (no tracked connection, and Require3WayHandshake=1 lets only a SYN open one)"
		}
	case reason.StateExpired:
		if d.Conn.Timeout > 0 {
			s += fmt.Sprintf(" (the connection was idle %s in state %s and %s is %d s)",
				fmtSeconds(d.Conn.Idle), d.Conn.EndedState, firewall.TimeoutWords(rs, &d.Conn), firewall.Seconds(d.Conn.Timeout))
		} else {
			s += fmt.Sprintf(" (the connection was closed, in state %s, %s before this packet)", d.Conn.EndedState, fmtSeconds(d.Conn.Idle))
		}
	case reason.OutOfWindow, reason.InvalidState, reason.HandshakeWrongDirection:
		if d.Conn.ID != 0 {
			s += fmt.Sprintf(" (connection #%d, state %s, packet in its %s direction)", d.Conn.ID, d.Conn.State, d.Conn.Dir)
		}
	}
	return s
}

// parsedString describes a decoded packet in the spec syntax.
func parsedString(p *packet.Parsed) string {
	if p.IPVersion == 0 {
		return "not an IP packet"
	}
	sp := Spec{Proto: p.Proto, Src: netip.AddrPortFrom(p.Src, p.SrcPort), Dst: netip.AddrPortFrom(p.Dst, p.DstPort),
		Flags: p.TCPFlags, Seq: p.Seq, Ack: p.Ack, PayloadLen: p.PayloadLen,
		ICMPType: p.ICMPType, ICMPCode: p.ICMPCode, ICMPID: p.ICMPID, ICMPSeq: p.ICMPSeq}
	switch p.Proto {
	case packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP, packet.ProtoICMPv6:
		return sp.String()
	}
	return fmt.Sprintf("%s %s > %s len %d", p.Proto, p.Src, p.Dst, p.PayloadLen)
}

// WriteText prints the explanation as numbered steps.
func (x *Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	if x.Context != "" {
		fmt.Fprintf(&b, "%s\n", x.Context)
	}
	fmt.Fprintf(&b, "packet: %s\n", x.Packet)
	width := 0
	for _, s := range x.Steps {
		width = max(width, len(s.Stage))
	}
	for i, s := range x.Steps {
		fmt.Fprintf(&b, "%2d. %-*s  %-9s %s\n", i+1, width, s.Stage, s.Result, s.Detail)
	}
	fmt.Fprintf(&b, "verdict: %s", x.Action)
	if x.Reason != "" {
		fmt.Fprintf(&b, ": %s (%s)", x.Reason, x.Text)
	}
	if x.Rule != "" {
		fmt.Fprintf(&b, ", by rule %s", x.Rule)
	}
	b.WriteString("\n")
	if x.Mismatch != "" {
		fmt.Fprintf(&b, "WARNING: %s; please report this\n", x.Mismatch)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ruleOptionStep says what the state options of rule i, the rule that decided d,
// did: for a packet picked up mid-stream, which rule's handshake option decided;
// for a new connection, the idle timeout and per-source limit it gets. "" when
// the rule has no option and the packet is no pickup.
func ruleOptionStep(rs *policy.Ruleset, i int, st *firewall.Settings, d *firewall.Decision, p *packet.Parsed) string {
	r := rs.Rule(i)
	if r.Action != policy.Permit {
		return ""
	}
	var parts []string
	// A pickup under Require3WayHandshake=0 by a rule without an option of its
	// own is the table's doing, which the connection step already says.
	pickup := p.Proto == packet.ProtoTCP && p.TCPFlags&(packet.SYN|packet.ACK) != packet.SYN
	if pickup && (r.Handshake != policy.HandshakeInherit || st.Conntrack.Strict) {
		mode := r.Handshake.String()
		if r.Handshake == policy.HandshakeInherit {
			mode = "inherit, and Require3WayHandshake=1"
			if !st.Conntrack.Strict {
				mode = "inherit, and Require3WayHandshake=0"
			}
		}
		if d.Created {
			parts = append(parts, fmt.Sprintf("Handshake of rule '%s' (%s) lets this packet, of no tracked connection and not a SYN, pick the connection up mid-stream", r.Name, mode))
		} else {
			parts = append(parts, fmt.Sprintf("Handshake of rule '%s' (%s) decided: only a loose rule picks a connection up mid-stream, so this packet gets strict tracking's %s", r.Name, mode, d.Reason))
		}
	} else if r.Handshake != policy.HandshakeInherit {
		parts = append(parts, fmt.Sprintf("Handshake=%s", r.Handshake))
	}
	if r.IdleTimeout > 0 && p.Proto == packet.ProtoTCP {
		parts = append(parts, fmt.Sprintf("IdleTimeout of rule '%s': %d s once established, instead of TcpEstablishedTimeout %d s",
			r.Name, firewall.Seconds(r.IdleTimeout), firewall.Seconds(st.Conntrack.Timeouts.TCPEstablished)))
	}
	if r.MaxConnectionsPerSource > 0 {
		w := fmt.Sprintf("MaxConnectionsPerSource of rule '%s': %d from one source at once", r.Name, r.MaxConnectionsPerSource)
		if d.Reason == reason.ConnectionLimit && d.Conn.Limit == conntrack.LimitRule {
			w += fmt.Sprintf(", which %s has reached", p.Src)
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, "; ")
}

// connOptionWords says which rule options a tracked connection runs under, "" for
// none.
func connOptionWords(rs *policy.Ruleset, m conntrack.Meta) string {
	var parts []string
	name := firewall.RuleName(rs, m.Rule)
	if m.IdleTimeout > 0 {
		parts = append(parts, fmt.Sprintf("IdleTimeout of rule '%s' %d s", name, firewall.Seconds(m.IdleTimeout)))
	}
	if m.Handshake == conntrack.HandshakeLoose {
		parts = append(parts, fmt.Sprintf("Handshake=loose from rule '%s'", name))
	}
	if m.MaxPerSource > 0 {
		parts = append(parts, fmt.Sprintf("MaxConnectionsPerSource %d from rule '%s'", m.MaxPerSource, name))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
