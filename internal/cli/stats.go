package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"keepstate/daemon"
)

func init() {
	register(&command{
		name:    "stats",
		summary: "counters of the running keepstate: packets, drops by reason, table, queues",
		run:     runStats,
	})
}

func runStats(e *env, args []string) int {
	fs := newFlagSet(e, "stats", "stats [--socket PATH] [--json]")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the counters as JSON")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	var s daemon.Stats
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdStats}, &s); code != exitOK {
		return code
	}
	if *asJSON {
		return printJSON(e, &s)
	}
	printStats(e.stdout, &s)
	return exitOK
}

func printStats(w io.Writer, s *daemon.Stats) {
	fmt.Fprintf(w, "packets      %d\n", s.Packets)
	fmt.Fprintf(w, "  accepted   %d\n", s.Accepted)
	fmt.Fprintf(w, "  dropped    %d\n", s.Dropped)
	type kv struct {
		id string
		n  uint64
	}
	var drops []kv
	for id, n := range s.DropsByReason {
		drops = append(drops, kv{id, n})
	}
	slices.SortFunc(drops, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, d := range drops {
		fmt.Fprintf(w, "    %-26s %d\n", d.id, d.n)
	}
	c := &s.Conntrack
	fmt.Fprintf(w, "connections  %d (created %d, expired %d, closed %d, evictions %d, flushed %d, table full %d, connection limit %d)\n",
		c.Connections, c.Created, c.Expired, c.Closed, c.Evicted, c.Flushed, c.TableFull, c.ConnLimit)
	if c.RSTInexact > 0 {
		fmt.Fprintf(w, "             %d RSTs in the window but not at the sender's next sequence passed without closing (RFC 5961; many suggest RST injection)\n", c.RSTInexact)
	}
	p := &s.Plane
	fmt.Fprintf(w, "queues       %d packets read, %d lost (queue full %d, user %d, socket overflow %d), %d netlink errors\n",
		p.Packets, s.QueueDrops, p.QueueDropped, p.UserDropped, p.SocketOverflows, s.NetlinkErrors)
	if p.Latency.Quantile(1) > 0 {
		fmt.Fprintf(w, "latency      p50 < %v, p99 < %v, max < %v\n", p.Latency.Quantile(0.5), p.Latency.Quantile(0.99), p.Latency.Quantile(1))
	}
	if f := p.FastPath; f != nil {
		fmt.Fprintf(w, "fast path    %s on %s: %d connections offloaded (%d handed over, %d taken back), %d packets and %d bytes accepted in the kernel, %d passed up, %d map full, %d errors\n",
			f.Mode, strings.Join(f.Interfaces, ", "), f.Offloaded, f.HandedOut, f.TakenBack, f.Packets, f.Bytes, f.Passed, f.MapFull, f.Errors)
	}
	if p.KernelStatsError != "" {
		fmt.Fprintf(w, "             kernel queue counters unavailable: %s\n", p.KernelStatsError)
	}
	fmt.Fprintf(w, "log          %d lines, %d drop lines suppressed, %d write errors\n", s.Log.Lines, s.Log.Suppressed, s.Log.WriteErrors)
}
