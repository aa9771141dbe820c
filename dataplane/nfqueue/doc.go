// Package nfqueue is keepstate's live data plane on Linux: the kernel hands
// forwarded packets to NFQUEUE, firewall.Engine decides, the verdict goes back.
//
// # Hooks
//
// A Plane installs hooks of its own and removes exactly those on Close (and when
// Start fails half-way): with the iptables backend the chains KEEPSTATE-FWD
// (filter FORWARD), KEEPSTATE-IN and KEEPSTATE-OUT (filter INPUT/OUTPUT, with
// Options.Input), KEEPSTATE-RAW and KEEPSTATE-RAWOUT (raw PREROUTING/OUTPUT),
// for iptables and ip6tables, each reached by one jump inserted first in the
// built-in chain; with the nftables backend the table inet keepstate. The raw
// chains bypass the kernel's connection tracking (NOTRACK / notrack) for the
// queued traffic, so keepstate's table is the only state. Nobody else's rules are
// touched. Hooks left by a keepstate that died (or by Detach, for a restart) are
// replaced in place at Start, after the queues were bound: a second live
// keepstate holds them and Start fails before anything changed.
//
// The hooks are scripts for the iptables-restore/ip6tables-restore (--noflush,
// -w) and nft tools rather than netlink messages from github.com/google/nftables:
// the same tools the administrator reads the result with, the only way to reach
// the xt NFQUEUE target of kernels without nftables' native queue expression
// (these machines: iptables-nft through nft_compat), each script is applied as
// one transaction (per table for iptables) so traffic never sees half of the
// hooks or a moment without them, and the tests assert the exact text. The
// backend "auto" tries the native queue expression in a scratch table inside one
// transaction that also deletes it, and falls back to iptables.
//
// # Queues and fan-out
//
// Options.Queues queues (--queue-balance / queue num N-M) each have a worker
// goroutine with its own socket. The kernel spreads packets over the queues with
// nfqueue_hash (include/net/netfilter/nf_queue.h, used by xt_NFQUEUE and
// nft_queue): jhash of the two addresses ordered smaller first, and the protocol.
// It is symmetric, so both directions of a connection reach the same worker; it
// ignores ports, so one pair of hosts always uses one queue. Options.CPUFanout
// (--queue-cpu-fanout) chooses the queue by CPU instead: not symmetric, but it
// spreads many streams between two hosts over every core. ICMP errors about a connection may come
// from a third address and reach another worker: the engine's table is safe for
// concurrent use, so nothing depends on the fan-out for correctness.
//
// # The netlink client
//
// The queues are read with a small netlink client of this package rather than
// github.com/florianl/go-nfqueue/v2: its callback receives one packet per call
// with no signal for "nothing more is waiting", which leaves no natural point to
// send a batch verdict, and it allocates on every packet and every verdict. Here a
// worker receives every message ready (recvmmsg, up to 64), decides each with one
// decode into a reused packet.Parsed, and writes all verdicts in one datagram: a
// verdict message per dropped packet, then one NFQNL_MSG_VERDICT_BATCH accepting
// every other packet of the batch (drops go first: the batch verdict covers every
// packet still queued up to its id). Nothing is allocated per packet on the
// accept path.
//
// Queues are configured with NFQA_CFG_F_GSO (GSO/GRO super-packets arrive whole,
// decided once, never segmented for us) and, with Options.FailOpen, both
// NFQA_CFG_F_FAIL_OPEN (a full queue accepts instead of dropping) and the hooks'
// bypass flag (no listener: accept). Only the first copyRange bytes of each packet
// are copied to userspace: every header the engine reads, whole packets at the
// usual MTU. Socket overflows (ENOBUFS), kernel error answers and the kernel's
// queue_dropped/user_dropped counters appear in Stats, never silently.
//
// A packet keepstate accepts continues with the next hook function: with the
// iptables backend the rest of the built-in chain that jumped to KEEPSTATE-FWD is
// skipped (keepstate's verdict replaces that table's), while other tables and
// nftables chains at other priorities still see the packet.
//
// # Deny
//
// A Reject decision (a Deny rule) is dropped and answered with a TCP RST or an
// ICMP/ICMPv6 destination unreachable (administratively prohibited), built with
// package packet and sent through a raw socket (IP_HDRINCL) whose packets carry a
// mark the hooks let pass. Answers are rate limited per worker. Drop is silent.
//
// # Namespaces
//
// A Plane works in the network namespace of the thread that calls Start, and runs
// its Close there too, whichever goroutine calls it (see netns.go).
package nfqueue
