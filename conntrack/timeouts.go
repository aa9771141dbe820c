package conntrack

import (
	"strconv"
	"time"
)

// Timeouts are the idle timeouts per state and protocol. A zero field means "use the
// default" (a zero timeout would make a connection expire on its first packet).
// TimeoutDefs describes every field: its setting name, default and source.
type Timeouts struct {
	TCPSynSent     time.Duration // SYN seen (also SYN_SENT2)
	TCPSynRecv     time.Duration // SYN-ACK seen
	TCPEstablished time.Duration
	TCPFinWait     time.Duration
	TCPCloseWait   time.Duration
	TCPLastAck     time.Duration
	TCPTimeWait    time.Duration
	TCPClose       time.Duration // after a RST
	TCPPickup      time.Duration // loose-mode cap until both directions have been seen
	TCPUnacked     time.Duration // cap while sent data is unacknowledged (dead peer)
	UDPUnreplied   time.Duration
	UDPReplied     time.Duration
	ICMP           time.Duration
	OtherUnreplied time.Duration
	OtherReplied   time.Duration
}

// TimeoutDef is one idle timeout: a row of the one table that the configuration's
// setting names, its documentation, explain, diagnose and the table's own class
// lists are all read from, so that a timeout is added, renamed or documented in one
// place.
type TimeoutDef struct {
	// Name is the setting in winroute.cfg's ConnTrack table and the word log lines
	// use for the timeout that ended a connection, e.g. "TcpEstablishedTimeout".
	Name    string
	Default time.Duration
	Unit    string // "s": timeouts are whole seconds wherever they are written
	// Conns says which connections the timeout applies to, in words.
	Conns string
	// Source says where the default comes from and why it was chosen.
	Source string
	// AtMostEstablished: the timeout is a cap on the established timeout, never an
	// extension of it (a shorter timeout for connections in doubt).
	AtMostEstablished bool

	field   func(*Timeouts) *time.Duration
	classes []class // the class lists this timeout times
	states  []State // the states whose connections it names (see TimeoutOf)
}

// Field returns the field of t this row describes.
func (d *TimeoutDef) Field(t *Timeouts) *time.Duration { return d.field(t) }

// The defaults' sources: Linux nf_conntrack sysctls
// (net.netfilter.nf_conntrack_*_timeout_*), pf's "normal" profile (pf.conf(5)),
// RFC 5382 (REQ-5: established idle timeout >= 2 h 4 min) and RFC 1122 4.2.3.6
// (keep-alive interval >= 2 h by default); each row's Source gives its numbers.
var timeoutDefs = []TimeoutDef{
	{Name: "TcpSynSentTimeout", Default: 120 * time.Second,
		Conns:   "SYN seen, no SYN-ACK yet",
		Source:  "Linux syn_sent 120; pf tcp.first 120",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPSynSent },
		classes: []class{clsSynSent}, states: []State{StateSynSent, StateSynSent2}},
	{Name: "TcpSynRecvTimeout", Default: 60 * time.Second,
		Conns:   "SYN-ACK seen, handshake not completed",
		Source:  "Linux syn_recv 60 (pf tcp.opening 30): a SYN-ACK may wait for a slow client",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPSynRecv },
		classes: []class{clsSynRecv}, states: []State{StateSynRecv}},
	{Name: "TcpEstablishedTimeout", Default: 24 * time.Hour,
		Conns:  "established connection idle",
		Source: "pf tcp.established 86400 (24 h); Linux uses 432000 (5 days). RFC 5382 requires at least 7440 (2 h 4 min) so that TCP keep-alives, first sent after 2 h of idleness (RFC 1122), find their connection: below that keepstate warns (story 2: 3600 s dropped an Oracle connection's keep-alives; 9000 s fixed it)",
		field:  func(t *Timeouts) *time.Duration { return &t.TCPEstablished },
		// The refiled list holds established connections that expiry handed
		// over from the unacknowledged-data list (see entry.list).
		classes: []class{clsEstablished, clsRefiled}, states: []State{StateEstablished}},
	{Name: "TcpFinWaitTimeout", Default: 120 * time.Second,
		Conns:   "one side sent FIN",
		Source:  "Linux fin_wait 120 (pf tcp.closing 900)",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPFinWait },
		classes: []class{clsFinWait}, states: []State{StateFinWait}},
	{Name: "TcpCloseWaitTimeout", Default: 60 * time.Second,
		Conns:   "FIN acknowledged, other side still open",
		Source:  "Linux close_wait 60",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPCloseWait },
		classes: []class{clsCloseWait}, states: []State{StateCloseWait}},
	{Name: "TcpLastAckTimeout", Default: 30 * time.Second,
		Conns:   "both FINs sent, last ACK awaited",
		Source:  "Linux last_ack 30",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPLastAck },
		classes: []class{clsLastAck}, states: []State{StateLastAck}},
	{Name: "TcpTimeWaitTimeout", Default: 120 * time.Second,
		Conns:   "closed by FINs; late segments still expected",
		Source:  "Linux time_wait 120 (2 MSL; pf tcp.closed 90)",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPTimeWait },
		classes: []class{clsTimeWait}, states: []State{StateTimeWait}},
	{Name: "TcpCloseTimeout", Default: 10 * time.Second,
		Conns:   "closed by RST",
		Source:  "Linux close 10: after a RST only retransmissions follow",
		field:   func(t *Timeouts) *time.Duration { return &t.TCPClose },
		classes: []class{clsClose}, states: []State{StateClose, StateNone}},
	{Name: "TcpPickupTimeout", Default: 300 * time.Second, AtMostEstablished: true,
		Conns:   "picked up mid-stream (`Require3WayHandshake` 0) until both directions were seen; then the state's own timeout applies",
		Source:  `Linux "unacknowledged" 300: a half-seen (asymmetric) flow stays while it sends and is gone within 5 min after`,
		field:   func(t *Timeouts) *time.Duration { return &t.TCPPickup },
		classes: []class{clsPickup}},
	{Name: "TcpUnackedTimeout", Default: 300 * time.Second, AtMostEstablished: true,
		Conns:   "established, with data sent that the peer has not acknowledged",
		Source:  `Linux "unacknowledged" 300: data that is never acknowledged means the peer is gone; its state is not held for a day`,
		field:   func(t *Timeouts) *time.Duration { return &t.TCPUnacked },
		classes: []class{clsUnacked}},
	{Name: "UdpUnrepliedTimeout", Default: 30 * time.Second,
		Conns:   "UDP seen one way only",
		Source:  "Linux udp 30; pf udp.single 30",
		field:   func(t *Timeouts) *time.Duration { return &t.UDPUnreplied },
		classes: []class{clsUDPUnreplied}, states: []State{StateUDPUnreplied}},
	{Name: "UdpRepliedTimeout", Default: 120 * time.Second,
		Conns:   "UDP seen both ways",
		Source:  "Linux udp_stream 120 (pf udp.multiple 60): SIP and VPN keep-alives are commonly 30-60 s apart",
		field:   func(t *Timeouts) *time.Duration { return &t.UDPReplied },
		classes: []class{clsUDPReplied}, states: []State{StateUDPReplied}},
	{Name: "IcmpTimeout", Default: 30 * time.Second,
		Conns:   "ICMP echo and other queries",
		Source:  "Linux icmp 30 (pf icmp.first 20)",
		field:   func(t *Timeouts) *time.Duration { return &t.ICMP },
		classes: []class{clsICMPUnreplied, clsICMPReplied}, states: []State{StateICMPUnreplied, StateICMPReplied}},
	{Name: "OtherUnrepliedTimeout", Default: 60 * time.Second,
		Conns:   "other protocols, one way only",
		Source:  "pf other.first 60 (Linux generic 600): an unanswered packet holds little",
		field:   func(t *Timeouts) *time.Duration { return &t.OtherUnreplied },
		classes: []class{clsOtherUnreplied}, states: []State{StateOtherUnreplied}},
	{Name: "OtherRepliedTimeout", Default: 600 * time.Second,
		Conns:   "other protocols, both ways",
		Source:  "Linux generic 600: GRE and ESP tunnels idle for minutes",
		field:   func(t *Timeouts) *time.Duration { return &t.OtherReplied },
		classes: []class{clsOtherReplied}, states: []State{StateOtherReplied}},
}

// TimeoutDefs returns the table of idle timeouts, in the order the configuration
// writes them. The rows are shared: callers must not modify them.
func TimeoutDefs() []TimeoutDef { return timeoutDefs }

// TimeoutByName returns the row of the timeout setting called name.
func TimeoutByName(name string) (*TimeoutDef, bool) {
	for i := range timeoutDefs {
		if timeoutDefs[i].Name == name {
			return &timeoutDefs[i], true
		}
	}
	return nil, false
}

// TimeoutOf returns the row of the timeout that applies to a connection in state s.
// assured is false for an established connection picked up mid-stream whose other
// side has not been heard yet.
func TimeoutOf(s State, assured bool) *TimeoutDef {
	if s == StateEstablished && !assured {
		return classDef[clsPickup]
	}
	if s < numStates {
		return classDef[stateClass[s]]
	}
	return classDef[clsClose]
}

// TimeoutName returns the name of the timeout that applies to a connection in state
// s (see TimeoutOf), e.g. "TcpEstablishedTimeout".
func TimeoutName(s State, assured bool) string { return TimeoutOf(s, assured).Name }

// classDef is the row that times each class list.
var classDef = func() (m [numClasses]*TimeoutDef) {
	for i := range timeoutDefs {
		for _, c := range timeoutDefs[i].classes {
			m[c] = &timeoutDefs[i]
		}
	}
	for c, d := range m {
		if d == nil {
			panic("conntrack: class list " + strconv.Itoa(c) + " has no timeout row")
		}
	}
	return m
}()

// DefaultTimeouts returns every timeout at its default (TimeoutDefs).
func DefaultTimeouts() Timeouts {
	var t Timeouts
	for i := range timeoutDefs {
		*timeoutDefs[i].field(&t) = timeoutDefs[i].Default
	}
	return t
}

// classTimeouts resolves t, zero fields taking their defaults, into the timeout of
// every class list (ns).
func classTimeouts(t *Timeouts) (out [numClasses]int64) {
	est := orDefault(t.TCPEstablished, classDef[clsEstablished].Default)
	for i := range timeoutDefs {
		d := &timeoutDefs[i]
		v := orDefault(*d.field(t), d.Default)
		if d.AtMostEstablished {
			v = min(v, est)
		}
		for _, c := range d.classes {
			out[c] = v
		}
	}
	return out
}
