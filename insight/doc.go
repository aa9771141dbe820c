// Package insight turns what the engine already reports (dropped packets with
// their reasons, connections that leave the table, the table's size) into
// findings an engineer on call can act on: what is wrong, where, how big, the
// packets that show it, and the narrowest configuration change that works around
// it, as a diff of winroute.cfg with its cost.
//
// # Where it runs
//
// A Monitor holds the detectors. It is fed three things: Drop (a dropped packet,
// copied out of the engine's Decision by DropOf), End (a connection that left the
// table, from the engine's OnConnEnd hook) and Tick (the time, and the table's
// counters). None of them comes from the accept path: drops already go through
// dataplane.Reporter, connection ends through OnConnEnd, and the table's counters
// are read once a tick. The monitor never reads the clock, so replay runs it on
// capture time (WatchReplay) and the daemon on the wall clock through a Feed.
//
// Without a connection-open event, syn_flood sees a flood's connections when they
// leave the table (one SYN timeout after it starts) or when a full table evicts or
// refuses them.
//
// # Life of an insight
//
// A detector groups its events (by server and client network, by service, by
// source...) and raises an insight when a group passes its threshold. The insight
// then updates as evidence comes, and closes when its evidence stopped for the
// kind's quiet time:
//
//	asymmetric_path              2 min without a dropped reply
//	keepalive_outlives_timeout   twice the keep-alive interval found, 10 min to 25 h
//	table_pressure               5 min below the adaptive threshold (90 % of the limit without
//	                             adaptive timeouts), with no eviction or refusal
//	connection_limit_hit         5 min without a refusal
//	syn_flood                    2 min without a half-open connection ending or a SYN refused
//	window_desync                1 min without an out-of-window drop
//	rule_shadowed                when a configuration without that shadow is put in force
//
// Thresholds, so that ordinary traffic raises nothing: asymmetric_path needs two
// connections seen only from their server's side (or one with three dropped
// replies), twice as many as connections seen from both sides without a handshake
// (lost state, not a path), a rule that permits them, and either replies past the
// SYN-ACK or clients behind an interface that is not in the Internet group (bare
// SYN-ACKs to public addresses are backscatter); connection_limit_hit three
// refusals; syn_flood 100 half-open connections (or refused SYNs) to one service
// in a minute from 20 sources, none sending half; window_desync 8 established
// connections (or one in a thousand the table holds) with out-of-window drops
// within 10 s.
//
// A closed insight is kept in a history of the last 64. Its id is a hash of its
// kind and what it is about, so the same finding has the same id from run to run;
// one that opens again after it closed gets a suffix (".2").
//
// # Bounds
//
// Memory does not grow with traffic. Every detector keeps at most 256 groups
// (maxGroups); when full, the group seen least recently that has not raised an
// insight goes, and if all have, the new one is counted in Stats.GroupsDropped
// and not tracked. A group tells apart at most 1024 connections (maxConns) and
// counts the rest as "at least"; it keeps 5 sample events (the first 3 and the
// latest 2), at most 64 host addresses (256 sources for table_pressure, 4096 for
// syn_flood, 16 destinations for connection_limit_hit). Rates are 60 one-minute
// counters, "the last minute" twelve 5-second ones. The monitor keeps the last
// 1024 changes (for `insights --follow`) and the last 64 closed insights. The
// daemon's Feed queues at most 8192 drops and 4096 connection ends and counts
// what it had no room for (Stats.Lost) instead of making a packet path wait.
//
// # Figures
//
// Insight.Figures holds the numbers a summary quotes, for scripts and tests:
//
//	asymmetric_path             connections, dropped_packets, replies, syn_acks, clients,
//	                            both_sides (connections seen from both sides: lost state), server_port
//	keepalive_outlives_timeout  connections, dropped_packets, keepalive_packets, keepalive_interval_s,
//	                            longest_idle_s, timeout_s, configured_timeout_s, needed_timeout_s,
//	                            advised_timeout_s, rfc5382_min_s, extra_connections_rule,
//	                            extra_connections_global, table_connections; with a memory figure
//	                            also bytes_per_connection, extra_mib_rule, extra_mib_global, table_mib
//	table_pressure              connections, peak, limit, adaptive_start, timeout_scale, evicted,
//	                            refused, half_open_evict, evictions_per_s, refusals_per_s, table_mib
//	connection_limit_hit        refused, refused_per_s, limit, destinations, top_dest_count, rule_id,
//	                            limit_at_once, limit_per_min, limit_of_rule (1 for the limit hit)
//	syn_flood                   half_open, syn_recv, syn_sent, refused_syns, sources, per_s, server_port
//	window_desync               connections, dropped_packets, burst_s, clients, servers
//	rule_shadowed               rule_id, position, shadowed_by (rules that shadow it; 0: matches nothing)
package insight
