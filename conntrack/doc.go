// Package conntrack is keepstate's connection table: it decides, for every packet,
// whether it belongs to a tracked connection, what that connection's state becomes, and
// why a packet is refused. It knows nothing about rules or I/O: the engine calls Track
// for each packet, evaluates its rules when Track answers NewConn, and then calls Create.
//
// # Time
//
// Every method takes now as int64 Unix nanoseconds. The table never reads the clock,
// so replay runs on capture time, live traffic on the wall clock and tests on a fake
// clock that they advance by hand, with exact results: a connection whose timeout is T
// is still there at lastSeen+T-1ns and gone at lastSeen+T.
//
// # Layout, and why
//
// The table is split into shards by a hash of the direction-independent tuple, each
// with its own mutex, so the established path never takes a global lock. Within a
// shard:
//
//   - Entries live in slabs: pages of 16 entries of a pointer-free struct,
//     addressed by uint32 index and carved for all shards from 14 KiB chunks. The
//     garbage collector never scans them (a noscan span costs nothing at mark time
//     however many connections there are), a freed entry is reused from a free
//     list, and growing the table appends a page instead of copying everything, so
//     there is no latency spike at 1M connections.
//   - The hash index is an open-addressing array of uint32 (6 bits of hash tag and a
//     26-bit entry index) with linear probing and backward-shift deletion: about 8
//     bytes per connection, and most mismatches are rejected by the tag without
//     touching the entry.
//   - Each entry is on exactly one intrusive doubly linked list (prev/next uint32),
//     one list per timeout class (SYN_SENT, ESTABLISHED, UDP replied, ...). Within a
//     class every entry has the same timeout, so a list kept in last-seen order is
//     also in expiry order: expiry walks from the head and stops at the first entry
//     that cannot have expired, costing O(expired), never a scan. (Established
//     connections are the exception, below: they may sit on the
//     unacknowledged-data list, whose timeout is never longer than theirs.) To keep the packet
//     path cheap an entry is moved to its list's tail only when a packet brings it
//     into a new time slice (a 16th of its class's timeout, between about 1 and
//     17 s) or a new class, not on every packet;
//     the slice start of an entry bounds the last-seen time of everything behind it,
//     which is all the early stop needs (see sliceShiftFor). A connection is filed
//     on the unacknowledged-data list when its handshake completes, and stays there
//     whether or not its data is acknowledged until expiry, one
//     unacknowledged-data timeout after it was last seen, hands it to a list of its
//     own: so that neither its first data nor data and its acknowledgement move it
//     (see entry.list). Track and
//     Create reap a few heads per call; Expire(now) reaps everything due, to the
//     nanosecond.
//   - An entry is 112 bytes; with the index, about 120 bytes per connection all
//     included (Linux's struct nf_conn alone is 248). To get there, times are Unix
//     nanoseconds only where exactness matters (last seen), the creation time is in
//     seconds, the rule metadata is interned per shard as a uint16, and counters are
//     48-bit bytes and 39-bit packets per direction.
//
// # Rule options
//
// A rule may give its connections options of their own (pf's per-rule "keep
// state (...)"): a handshake mode, a per-source limit and an established idle
// timeout, carried in the interned Meta. A rule's idle timeout cannot share the
// class lists, whose early stop needs one timeout per list, so each distinct value
// is a timeout profile with its own established, unacknowledged-data and refiled
// lists in each shard (see profile.go); the entry only points at its Meta, which
// says the profile. Remap moves live connections when a new ruleset changes their
// rule's options, merging them into their new lists in last-seen order.
//
// # Batches
//
// In a table of a million connections a lookup waits on main memory twice, for the
// index slot and then for the entry. A caller with several packets at hand (the
// engine's DecideBatch) calls Prepare for each first, which builds and hashes the key
// and asks the CPU for the slot; Warm a few packets ahead of the one being tracked,
// which reads the slot and asks for the entry; and TrackPrepared (and CreatePrepared)
// in packet order, which reuse the key and hash. Prepare and Warm take no lock and
// change nothing, which is why index slots are written atomically and the slab's
// chunk pointers are published through atomics: a slot or entry that changes in
// between only makes a hint useless. The answers are the ones TrackInto gives.
//
// # Tombstones
//
// When a connection ends (timed out, closed by FIN or RST, evicted, flushed) its tuple,
// state, last-seen time and timeout go into a bounded, set-associative tombstone
// memory. A later non-SYN packet for that tuple is then refused as StateExpired with
// how long the connection had been idle and the timeout that ended it, instead of a
// bare "3-way handshake not completed". That is what the second incident of the
// README needed: a keep-alive after 7200 s against a 3600 s timeout says so in the
// log; and late FIN/RST retransmissions after a close get a clear reason.
//
// # TCP
//
// The state machine follows Linux's nf_conntrack_proto_tcp (NONE, SYN_SENT, SYN_RECV,
// ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2), with
// window tracking after Guido van Rooij's four bounds. In strict mode
// (Require3WayHandshake=1) only a SYN opens a connection and the handshake must run in
// the right directions; in loose mode a mid-stream packet may be picked up, with
// a capped timeout until both directions have been seen, and windows that are never
// enforced (its window scale was not seen; Linux keeps such a connection liberal too).
// Where keepstate and Linux answer a packet differently, and why, is in
// docs/conformance.md; package conformance checks it against the kernel itself.
//
// A RST must fall inside the window to pass. On an established connection whose
// handshake was seen (not one picked up mid-stream) it closes the connection only if
// its sequence number is the sender's exact next one (RFC 5961); any other RST in the
// window passes, so that the receiver can answer it with a challenge ACK, but changes
// nothing, and is counted in Stats.RSTInexact. Without this, one spoofed RST guessed
// into the window would make the firewall drop the rest of a connection both hosts
// keep. The sender's next is the highest sequence number it sent, where Linux uses
// the highest the receiver acknowledged: a RST at the last acknowledged number while
// data is in flight leaves the connection to the unacknowledged-data timeout.
//
// # Callbacks and changes
//
// Config.OnEnd is called for every connection that leaves the table. It is never
// called with a shard lock held, so it may call back into the Table.
//
// Config.OnChange is the one way to hear of connections as they change; the
// cluster, the kernel fast path and the insight detectors all use it, and a new
// consumer should too rather than add a hook of its own. It gets Change values:
// created, every state change (TCP's handshake steps, ESTABLISHED, the closing
// states, CLOSE; UDP/ICMP/other's first reply) and ended (with the EndCause), each
// with the connection's ConnInfo and its Record, the snapshot's entry record
// (tuple, state, flags, windows, rule, counters, age and idle time relative to
// Change.Now). Changes are collected under the shard lock and delivered after it is
// released, in order, one call per lock hold, like OnEnd; their batches come from a
// pool, so nothing allocates in a steady state (a test checks the established path
// and a whole connection's life).
//
// Window, last-seen and counter updates happen on nearly every packet, so they are
// not events: with Config.TrackUpdates a packet that changes them sets a dirty
// mark on its entry (the top bit of its meta index) and, the first time, puts the
// entry's index on its shard's dirty list. SweepUpdates, called periodically by one
// consumer (the daemon), delivers one ChangeUpdated per marked connection, in
// batches of a few hundred per shard, and clears the marks. The packet path pays a
// branch, and an append once per connection per sweep.
//
// # Taking connections over
//
// Apply puts a peer's Change into the table (a cluster node keeping its copy), and
// ApplySnapshot merges a whole snapshot (a node catching up). The records are the
// snapshot format's, so there is one encoding for what leaves a table. A connection
// the table did not see for itself relearns its windows (entry.relearn): they are
// cleared and the connection is liberal, as a picked-up one is, until both
// directions have been seen again, when the windows are enforced; unlike a pickup
// it keeps its state, rule, assured flag, window-scale and SACK options and its
// state's timeout (an entry that is liberal and assured is relearning; a pickup
// is never assured while liberal). The packets in flight when the path moved are
// thus accepted whatever the peer's last batch said about the windows. A
// connection restored from a snapshot of an earlier run is the same case and uses
// the same mechanism: packets may have passed while no keepstate watched (fail
// open, a stop that removed the hooks, the seconds since the periodic snapshot a
// crash fell back on); a restored connection still waiting for its SYN-ACK
// keeps its windows, so that the SYN-ACK must acknowledge the SYN.
// Liberal is for data and acknowledgements only: a RST or FIN, which end a
// connection, is checked against the sequence number the other side
// acknowledged, and one that nothing can check yet is dropped (a RST) or passes
// without changing the state (a FIN); see relearn.go. Only tuples the snapshot or
// the peer held are taken over: every other packet meets the table's strictness
// as usual. Apply's rules (state only moves forward, the later
// last-seen and larger counters win, an end older than a packet seen here is
// ignored, a record older than a tombstone is dropped) make re-applying old or
// duplicate records harmless.
//
// # Names
//
// The verdict "new" is NewConn because New is the constructor. CloseIf ends the
// connections its predicate returns true for; KeepIf is the inverse, for callers
// that ask "does the new ruleset keep this connection?".
package conntrack
