package firewall

import (
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/policy"
)

// Apply puts rules rs and settings s in force. Every tracked connection is kept;
// when s.CloseConnectionsOnRuleChange is set, connections the new rules would
// refuse are closed, and OnConnEnd sees them with cause EndRuleChanged. It returns
// how many connections were closed; on an error nothing changed.
func (e *Engine) Apply(rs *policy.Ruleset, s Settings) (closed int, err error) {
	c, err := compile(rs, s)
	if err != nil {
		return 0, err
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()

	e.table.Reconfigure(e.tableConfig(s))
	e.cur.Store(c)
	if !s.CloseConnectionsOnRuleChange {
		return 0, nil
	}
	return e.table.CloseIf(func(ci *conntrack.ConnInfo) bool {
		return !permits(c.rules, ci)
	}, conntrack.EndRuleChanged), nil
}

// permits reports whether rules would let the connection ci open now. The ingress
// and egress interfaces are inferred from the addresses: the table does not keep the
// interface a connection arrived on.
func permits(rules *policy.Ruleset, ci *conntrack.ConnInfo) bool {
	q := policy.Query{
		Src: ci.Src, Dst: ci.Dst, Proto: uint8(ci.Proto),
		InIface:  rules.IfaceForAddr(ci.Src),
		OutIface: rules.IfaceForAddr(ci.Dst),
	}
	switch ci.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		q.SrcPort, q.DstPort = ci.SrcPort, ci.DstPort
	case packet.ProtoICMP:
		q.ICMPType = 8 // tracked ICMP connections are echo exchanges
	case packet.ProtoICMPv6:
		q.ICMPType = 128
	}
	_, action := rules.Match(&q)
	return action == policy.Permit
}

// Seconds formats a duration as whole seconds, the unit of every timeout setting.
func Seconds(d time.Duration) int64 { return int64(d / time.Second) }
