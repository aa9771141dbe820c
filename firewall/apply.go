package firewall

import (
	"fmt"
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

	old := e.cur.Load()
	e.table.Reconfigure(e.tableConfig(c))
	e.cur.Store(c)
	if old.options || c.options {
		// Connections keep their rule and take its new state options: moved to
		// the timeout profile of its IdleTimeout, counted under its limit.
		e.table.Remap(c.remeta)
	}
	if !s.CloseConnectionsOnRuleChange {
		return 0, nil
	}
	return e.table.CloseIf(func(ci *conntrack.ConnInfo) bool {
		return !permits(c.rules, ci)
	}, conntrack.EndRuleChanged), nil
}

// CloseRefused ends the tracked connections the rules in force would refuse
// (cause EndRuleChanged), as Apply does after a change when
// CloseConnectionsOnRuleChange is on, and returns how many it closed. It is for
// connections admitted under another configuration: those of a snapshot written
// by an earlier run.
func (e *Engine) CloseRefused() int {
	c := e.cur.Load()
	if !c.settings.CloseConnectionsOnRuleChange {
		return 0
	}
	return e.table.CloseIf(func(ci *conntrack.ConnInfo) bool {
		return !permits(c.rules, ci)
	}, conntrack.EndRuleChanged)
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

// TimeoutWords names the timeout that ended the connection a StateExpired result r
// reports, for log lines and diagnostics: "IdleTimeout of rule 'NAME'" when the
// admitting rule's option did, else the setting, e.g. "TcpEstablishedTimeout".
func TimeoutWords(rs *policy.Ruleset, r *conntrack.Result) string {
	if r.RuleTimeoutEnded() {
		return "IdleTimeout of rule '" + RuleName(rs, r.Meta.Rule) + "'"
	}
	if td := r.EndedTimeout(); td != nil {
		return td.Name
	}
	return conntrack.TimeoutName(r.EndedState, true)
}

// RuleIndex returns the index in rs of the rule a connection's Meta.Rule names, -1
// if rs has no such rule.
func RuleIndex(rs *policy.Ruleset, id uint32) int {
	for i := range rs.NumRules() {
		if ruleID(rs, i) == id {
			return i
		}
	}
	return -1
}

// RuleName is the name of the rule Meta.Rule id names, or "#id" when rs has none.
func RuleName(rs *policy.Ruleset, id uint32) string {
	if i := RuleIndex(rs, id); i >= 0 {
		return rs.Rule(i).Name
	}
	return fmt.Sprintf("#%d", id)
}
