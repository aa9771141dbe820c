// Package lab builds throw-away network-namespace topologies on one Linux machine
// and replays the two incidents keepstate was built from (see the README) with real
// TCP connections through a live `keepstate run`.
//
// # Topology
//
//	client ns              firewall ns                      server ns
//	eth0 10.201.1.2 ── lan0 10.201.1.1 [keepstate] dmz0 10.201.2.1 ── eth0 10.201.2.2
//	  byp0 10.201.3.1 ──────────── (optional bypass) ──────────── byp0 10.201.3.2
//
// The optional bypass is the blade switch of the first story: a direct veth
// between client and server that the client uses to reach the server network,
// while the server still answers through the firewall. The firewall then sees
// the replies of connections whose SYN it never saw.
//
// Every name carries a prefix, the process id and a sequence number, so parallel
// runs never collide; Close deletes the namespaces (which deletes their veths) and
// New first removes the namespaces of earlier runs whose process is gone (a run
// killed with SIGKILL). Only addresses of 10.201.0.0/16 inside namespaces this
// package created are used: nothing leaves the machine.
//
// The topology is built with the ip tool of iproute2 rather than with netlink
// libraries: the commands are the ones an administrator types to inspect the
// result (`ip -n NAME addr`), errors come back in the tool's own words, a
// namespace is a bind mount that `ip netns` manages the same way for everyone,
// iproute2 is present wherever iptables and nft are (the data plane needs them
// too), and it keeps the module free of two dependencies. Building a topology is
// about twenty short commands, a few tens of milliseconds: no figure of the lab
// depends on it.
//
// # Running things inside
//
// The keepstate daemon runs as a child process under `ip netns exec`. Traffic is
// made in this process: a network namespace belongs to an OS thread, so Do locks a
// goroutine to its thread, enters the namespace, runs a function (which opens
// sockets there) and comes back; a socket keeps its namespace for life, so the
// reads and writes happen on any thread afterwards.
//
// # Scenarios
//
// Scenarios (handshake, keepalive, reload, restart, deny, limit) each build a
// topology, write a configuration, start the daemon, make traffic and check what
// the client saw and what the logs say; Run returns a Result that the CLI prints
// and the tests assert on.
package lab
