package daemon

import (
	"context"

	"keepstate/dataplane"
	"keepstate/dataplane/nfqueue"
	"keepstate/firewall"
)

// DataPlane feeds packets to the engine and verdicts back: *nfqueue.Plane in
// production, a fake driven by synthetic packets in tests. The daemon never
// decides anything itself; it only starts, watches and stops the plane.
type DataPlane interface {
	// Start installs whatever hooks the plane needs and starts deciding; it
	// returns once packets flow, or with an error after undoing what it did.
	Start(ctx context.Context) error
	// Close removes the hooks and stops; safe to call more than once.
	Close() error
	// Detach stops but leaves the hooks in place, for a restart: the next plane
	// takes them over, and until then the fail mode decides (closed: forwarded
	// packets are dropped and TCP retransmits them). Close after Detach does
	// nothing.
	Detach() error
	// Wait blocks until the plane stopped (Close, the Start context ended, or a
	// failure) and returns the failure, if any.
	Wait() error
	// Backend says how packets reach the plane, e.g. "iptables (xt NFQUEUE)".
	Backend() string
	// Stats are the plane's counters: packets read, queue drops, netlink errors,
	// verdict latency.
	Stats() nfqueue.Stats
}

// PlaneFactory builds the data plane for an engine and the reporter that logs its
// decisions. It is called once, after the engine exists and the table was
// restored.
type PlaneFactory func(eng *firewall.Engine, rep *dataplane.Reporter) (DataPlane, error)

// The production plane satisfies the interface.
var _ DataPlane = (*nfqueue.Plane)(nil)
