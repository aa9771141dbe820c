package nfqueue

import (
	"keepstate/conntrack"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
)

// FastPath is a kernel fast path working beside the queues (package
// dataplane/ebpf): it accepts some packets before they reach the hooks and marks
// them AcceptMark. The packets it gives up reach the engine as any other, whose
// table takes their connection back before deciding them (conntrack's offload
// protocol), so the workers only tell it what the engine accepted.
type FastPath interface {
	// Offer: the engine accepted p, of an established connection, travelling in
	// direction dir, arrived on ifindex (0: the host's own).
	Offer(p *packet.Parsed, dir conntrack.Dir, ifindex uint32, now int64)
	// AcceptMark is the mark it puts on the packets it accepted.
	AcceptMark() uint32
}

// Options configure a Plane.
type Options struct {
	Engine   *firewall.Engine
	Reporter *dataplane.Reporter // nil: decide and count only
	QueueNum uint16              // first queue
	Queues   int                 // number of queues = worker goroutines (default: GOMAXPROCS)
	// FailOpen lets traffic pass while no program listens on the queues (the
	// queue bypass flag) and when a queue is full. The default, closed, drops it.
	FailOpen bool
	// Input also queues packets addressed to the firewall itself and the ones it
	// sends (default: forwarded packets only).
	Input bool
	// Backend is "auto" (nftables' native queue when the kernel has it, else
	// iptables), "nft" or "iptables". Empty means auto.
	Backend string
	// CPUFanout spreads packets over the queues by the CPU that handles them
	// (--queue-cpu-fanout, nft "fanout") instead of the kernel's hash of the two
	// addresses. The hash keeps a connection on one worker but puts every
	// connection between two hosts on one queue, so many streams between two hosts
	// use one core; with CPU fan-out they use all, and the two directions of a
	// connection may meet on different workers, which the engine's table allows.
	CPUFanout bool
	// FastPath, when set, is told about accepted established packets, and the
	// hooks accept its AcceptMark without queueing.
	FastPath FastPath
}
