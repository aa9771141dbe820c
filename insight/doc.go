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
// capture time (WatchReplay).
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
// latest 2), and at most 64 host addresses. Rates are 60 one-minute counters. The
// monitor keeps the last 1024 changes and the last 64 closed insights.
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
package insight
