// Package ebpf is keepstate's kernel fast path: an eBPF program at the ingress
// (TC, tcx) of every interface keepstate guards accepts, in the kernel, the
// ordinary packets of established connections the Go engine handed over, so that
// they no longer cross to user space through NFQUEUE. It is a cache of the
// engine's decisions, never a second engine.
//
// # What the program accepts
//
// A packet is accepted in the kernel only when all of this holds: it is IPv4 or
// IPv6 (no extension headers), not a fragment, TCP or UDP with headers package
// packet decodes without complaint (the same option walk); its connection is in
// the map; it arrives on the interface that direction's packets arrived on when
// the engine handed the connection over (which is what anti-spoofing checked);
// the connection has not been idle for its timeout (the unacknowledged-data one
// while data is outstanding, as conntrack's classes); for TCP its flags, PSH, ECE
// and CWR aside, are ACK or ACK+URG (no SYN, FIN or RST), and it passes
// conntrack's four window bounds with window scaling and SACK. It then updates
// the entry as conntrack would (windows, unacknowledged flags, last-seen time,
// packets and bytes of its direction) and gets the skb mark MarkAccept, which
// the NFQUEUE hooks accept without queueing. A packet of a connection in the map
// that fails any test gets MarkPassed and goes to the engine; every other packet
// goes on unmarked, as before.
//
// # Who owns what, when
//
// The engine's table (package conntrack) is the authority; see conntrack's
// offload.go for the protocol. In short: the engine hands a connection over
// (Table.Offload, under the shard lock) once both directions have been seen
// through the queue with their ingress interfaces and it is established (TCP:
// both windows tracked, not a pickup; UDP: replied); from then on the map's
// windows, last-seen time and counters are the current ones, and the table's are
// frozen. The table folds the map's copy in whenever it needs it current (expiry,
// listing, snapshots, ICMP errors), takes the connection back (BPF_F_LOCK
// lookup-and-delete) before the engine decides any packet of it, which is how a
// packet the program gave up is decided on current state, takes every
// connection back when the configuration changes (timeouts and rule options are
// told at hand-over), and takes it out of the map whenever it ends, for whatever
// cause (FIN or RST come up; expiry, flush, rule change and eviction end it in
// the table). A connection taken back is handed over again once the engine has
// accepted another of its established packets. Only
// the program writes an entry while it is in the map; user space reads it under
// the entry's spin lock, so a packet on another CPU never tears a window.
// Counters in the map are totals (the engine's at hand-over plus the kernel's),
// so folding in is idempotent.
//
// Times in the map are CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns),
// converted from and to the engine's Unix nanoseconds at each read and write.
//
// # Why TC and not XDP
//
// The mark that lets keepstate's own netfilter hook pass a packet is a field of
// the skb, which XDP runs before. An XDP program could only pay by redirecting
// accepted packets straight to their egress device, past netfilter and with it
// everybody else's rules, which keepstate promises to leave in force.
package ebpf
