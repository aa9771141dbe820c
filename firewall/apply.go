package firewall

import (
	"time"

	"keepstate/config"
	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/policy"
)

// Apply makes cfg the configuration in force. It compiles cfg first: a configuration
// that does not compile changes nothing. Every tracked connection is kept; when
// CloseConnectionsOnRuleChange is on (the default), connections the new rules would
// refuse are closed, and OnConnEnd sees them with cause EndRuleChanged. It returns
// how many connections were closed.
func (e *Engine) Apply(cfg *config.Config) (closed int, err error) {
	c, err := compile(cfg)
	if err != nil {
		return 0, err
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()

	e.table.Reconfigure(e.tableConfig(cfg))
	e.cur.Store(c)
	if !cfg.Settings.CloseConnectionsOnRuleChange {
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

// TimeoutName returns the configuration setting whose idle timeout applies to a
// connection in state s, e.g. "TcpEstablishedTimeout", for log lines that say which
// timeout ended a connection. assured is false for a connection picked up
// mid-stream whose other side has not been heard yet.
func TimeoutName(s conntrack.State, assured bool) string {
	switch s {
	case conntrack.StateSynSent, conntrack.StateSynSent2:
		return "TcpSynSentTimeout"
	case conntrack.StateSynRecv:
		return "TcpSynRecvTimeout"
	case conntrack.StateEstablished:
		if !assured {
			return "TcpPickupTimeout" // picked up mid-stream, other side not heard yet
		}
		return "TcpEstablishedTimeout"
	case conntrack.StateFinWait:
		return "TcpFinWaitTimeout"
	case conntrack.StateCloseWait:
		return "TcpCloseWaitTimeout"
	case conntrack.StateLastAck:
		return "TcpLastAckTimeout"
	case conntrack.StateTimeWait:
		return "TcpTimeWaitTimeout"
	case conntrack.StateClose:
		return "TcpCloseTimeout"
	case conntrack.StateUDPUnreplied:
		return "UdpUnrepliedTimeout"
	case conntrack.StateUDPReplied:
		return "UdpRepliedTimeout"
	case conntrack.StateICMPUnreplied, conntrack.StateICMPReplied:
		return "IcmpTimeout"
	case conntrack.StateOtherUnreplied:
		return "OtherUnrepliedTimeout"
	case conntrack.StateOtherReplied:
		return "OtherRepliedTimeout"
	}
	return "timeout"
}

// Seconds formats a duration as whole seconds, the unit of every timeout setting.
func Seconds(d time.Duration) int64 { return int64(d / time.Second) }
