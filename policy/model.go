// Package policy holds the traffic-rule model (interfaces, address groups, services,
// ordered rules) and compiles it into an immutable Ruleset that answers "which rule
// decides this new connection?" without allocating and without scanning the rules.
//
// The package knows nothing of files or XML: package config reads and writes the
// model, the firewall engine compiles it and swaps the Ruleset atomically.
package policy

import (
	"fmt"
	"net/netip"
	"time"
)

// Action is what a rule (or the default rule) does with a new connection.
type Action uint8

// Deny is the zero value on purpose: a rule whose action was never set fails closed.
const (
	Deny   Action = iota // refuse and tell the client (TCP RST, ICMP unreachable)
	Permit               // let the connection open; conntrack keeps its state
	Drop                 // refuse silently
)

var actionNames = [...]string{Deny: "Deny", Permit: "Permit", Drop: "Drop"}

// String returns "Permit", "Deny" or "Drop".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction parses the exact spelling String returns.
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return Deny, false
}

// IfaceGroup is the role of an interface, as Kerio Control groups them.
type IfaceGroup uint8

// Other is the zero value: an interface never classified is neither trusted nor the
// catch-all Internet side.
const (
	Other    IfaceGroup = iota
	Internet            // the side that owns every address no other interface owns
	Trusted             // local networks (Kerio's "Trusted/Local")
	Guest
	VPN
	numGroups
)

var groupNames = [numGroups]string{Other: "Other", Internet: "Internet", Trusted: "Trusted", Guest: "Guest", VPN: "VPN"}

// String returns the group name as written in configuration files.
func (g IfaceGroup) String() string {
	if g < numGroups {
		return groupNames[g]
	}
	return fmt.Sprintf("IfaceGroup(%d)", uint8(g))
}

// ParseIfaceGroup parses the exact spelling String returns.
func ParseIfaceGroup(s string) (IfaceGroup, bool) {
	for i, n := range groupNames {
		if n == s {
			return IfaceGroup(i), true
		}
	}
	return Other, false
}

// IfaceGroupNames lists the valid group names in order (for error suggestions).
func IfaceGroupNames() []string { return append([]string(nil), groupNames[:]...) }

// Interface is a network interface of the firewall.
type Interface struct {
	ID          int // stable identity kept by config for round trips; not used to match
	Name        string
	Group       IfaceGroup
	Device      string         // OS device name (eth0); empty when not bound yet
	Addresses   []netip.Prefix // the firewall's own addresses on it, with prefix length
	Networks    []netip.Prefix // further networks reachable through it (routed)
	Description string
}

// TermKind says what a source or destination term (or address-group item) names.
type TermKind uint8

const (
	TermAny            TermKind = iota // every address
	TermHost                           // one address (Prefix is a single-address prefix)
	TermPrefix                         // Prefix
	TermRange                          // From..To inclusive
	TermAddressGroup                   // the address group Name
	TermInterface                      // the interface Name (ingress for sources, egress for destinations)
	TermInterfaceGroup                 // every interface of Group
)

// Term is one element of a rule's source or destination, or one address-group item.
type Term struct {
	Kind     TermKind
	Prefix   netip.Prefix // TermHost, TermPrefix
	From, To netip.Addr   // TermRange
	Name     string       // TermAddressGroup, TermInterface
	Group    IfaceGroup   // TermInterfaceGroup
}

// Host, PrefixTerm, Range, GroupRef, Iface and IfGroup build terms; they keep tests
// and built-in configurations readable.
func Host(a netip.Addr) Term         { return Term{Kind: TermHost, Prefix: netip.PrefixFrom(a, a.BitLen())} }
func PrefixTerm(p netip.Prefix) Term { return Term{Kind: TermPrefix, Prefix: p} }
func Range(from, to netip.Addr) Term { return Term{Kind: TermRange, From: from, To: to} }
func GroupRef(name string) Term      { return Term{Kind: TermAddressGroup, Name: name} }
func Iface(name string) Term         { return Term{Kind: TermInterface, Name: name} }
func IfGroup(g IfaceGroup) Term      { return Term{Kind: TermInterfaceGroup, Group: g} }

// String returns the term in configuration syntax, e.g. "prefix:10.0.0.0/8".
func (t Term) String() string { return FormatTerm(t) }

// isAddressItemKind reports whether an address-group item may have this kind.
func (k TermKind) isAddressItemKind() bool { return k >= TermHost && k <= TermAddressGroup }

// AddressGroup is a named set of addresses (Kerio's IP address group).
type AddressGroup struct {
	Name  string
	Items []AddrItem
}

// AddrItem is one entry of an address group: a host, prefix, range or nested group.
type AddrItem struct {
	ID          int
	Enabled     bool // disabled items are kept but match nothing
	Description string
	Addr        Term // Kind is TermHost, TermPrefix, TermRange or TermAddressGroup
}

// Protocol selects the IP protocol of a service: an IP protocol number 0-255, or one
// of the wildcards below.
type Protocol int16

const (
	ProtoAny    Protocol = -1 // every protocol
	ProtoTCPUDP Protocol = -2 // TCP and UDP with the same ports (DNS, ...)
	ProtoICMP   Protocol = 1
	ProtoTCP    Protocol = 6
	ProtoUDP    Protocol = 17
	ProtoICMPv6 Protocol = 58
)

// PortRange is an inclusive range of ports (or ICMP types).
type PortRange struct{ Lo, Hi uint16 }

// Service is a named protocol with destination ports or ICMP types.
type Service struct {
	ID          int
	Name        string
	Description string
	Protocol    Protocol
	Ports       []PortRange // TCP/UDP destination ports; empty means every port
	ICMPTypes   []PortRange // ICMP/ICMPv6 types (0-255); empty means every type
}

// Rule is one traffic rule. Rules are evaluated in order; the first match decides.
type Rule struct {
	ID             int
	Name           string
	Enabled        bool
	Source         []Term   // empty or containing TermAny: every source
	Destination    []Term   // empty or containing TermAny: every destination
	Services       []string // service names; empty means every service
	Action         Action
	LogPackets     bool // log every packet the rule decides (Kerio "log packets")
	LogConnections bool // log each connection when it ends (Kerio "log connections")
	Description    string

	// State options for the connections the rule permits, as pf's per-rule
	// "keep state (...)": the zero values inherit the global settings.
	Handshake Handshake
	// IdleTimeout is the established-TCP idle timeout of the rule's connections;
	// 0 inherits TcpEstablishedTimeout.
	IdleTimeout time.Duration
	// MaxConnectionsPerSource limits the connections the rule admits from one
	// source address at once, on top of the global per-source limit; 0: no limit
	// of its own.
	MaxConnectionsPerSource int
}

// MaxIdleTimeouts is how many distinct IdleTimeout values the rules of one
// ruleset may use: each is a timeout profile with its own connection lists in
// the table.
const MaxIdleTimeouts = 15

// HasStateOptions reports whether r overrides any state option.
func (r *Rule) HasStateOptions() bool {
	return r.Handshake != HandshakeInherit || r.IdleTimeout != 0 || r.MaxConnectionsPerSource != 0
}

// Handshake is a rule's handshake option: whether the connections it permits may
// be picked up mid-stream, without their handshake.
type Handshake uint8

const (
	HandshakeInherit Handshake = iota // Require3WayHandshake decides
	HandshakeStrict                   // only a SYN opens a connection, its handshake must be seen
	HandshakeLoose                    // a mid-stream packet may open a connection (an asymmetric path)
)

var handshakeNames = [...]string{HandshakeInherit: "inherit", HandshakeStrict: "strict", HandshakeLoose: "loose"}

// String returns "inherit", "strict" or "loose".
func (h Handshake) String() string {
	if int(h) < len(handshakeNames) {
		return handshakeNames[h]
	}
	return fmt.Sprintf("Handshake(%d)", uint8(h))
}

// ParseHandshake parses the exact spelling String returns.
func ParseHandshake(s string) (Handshake, bool) {
	for i, n := range handshakeNames {
		if n == s {
			return Handshake(i), true
		}
	}
	return HandshakeInherit, false
}

// HandshakeNames lists the valid spellings in order (for error messages).
func HandshakeNames() []string { return append([]string(nil), handshakeNames[:]...) }

// Model is everything Compile needs.
type Model struct {
	Interfaces    []Interface
	AddressGroups []AddressGroup
	Services      []Service
	Rules         []Rule
	DefaultAction Action // the fixed last rule
}

// PermitAll returns the built-in policy: one Internet-group interface that owns
// every address and one rule that permits every connection, so that connection
// tracking alone decides. Each call returns a new value.
func PermitAll() Model {
	return Model{
		Interfaces: []Interface{
			{ID: 1, Name: "Internet", Group: Internet, Description: "catches every address; bind Device and add interfaces to use anti-spoofing"},
		},
		Rules: []Rule{
			{ID: 1, Name: "Permit all connections", Enabled: true, Action: Permit,
				Description: "built-in default: connection tracking alone decides"},
		},
		DefaultAction: Deny,
	}
}
