package cli

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"keepstate/daemon"
)

func init() {
	register(&command{
		name:    "conntrack",
		summary: "list or flush the running keepstate's connections",
		run:     runConntrack,
	})
}

const conntrackUsage = `conntrack list [--json] [--limit N] [--socket PATH] [FILTER]
       keepstate conntrack flush [--socket PATH] [FILTER]

FILTER is words, key then value, all keys must match, a repeated key matches any
of its values: src|dst|host ADDR[/BITS], sport|dport|port N[-M], proto
tcp|udp|icmp|icmpv6|N, state ESTABLISHED|SYN_SENT|TIME_WAIT|UDP_REPLIED|..., id N.
Example: keepstate conntrack list src 10.1.0.2 dport 8080. No filter: every connection.`

func runConntrack(e *env, args []string) int {
	return runSubcommands(e, "conntrack", conntrackUsage, []subcommand{
		{"list", conntrackList}, {"flush", conntrackFlush},
	}, args)
}

func conntrackList(e *env, args []string) int {
	fs := newFlagSet(e, "conntrack list", conntrackUsage)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the connections as JSON")
	limit := fs.Int("limit", 0, "list at most N connections, oldest first (0: all)")
	filter, err := parseFlags(fs, args)
	if err != nil || *limit < 0 {
		return exitUsage
	}
	var list daemon.ConnList
	req := &daemon.Request{Cmd: daemon.CmdConntrackList, Filter: filter, Limit: *limit}
	if code := callDaemon(e, *socket, req, &list); code != exitOK {
		return code
	}
	if *asJSON {
		return printJSON(e, &list)
	}
	for i := range list.Conns {
		printConn(e.stdout, &list.Conns[i])
	}
	fmt.Fprintf(e.stdout, "%d of %d connection(s) matched", list.Matched, list.Total)
	if len(list.Conns) < list.Matched {
		fmt.Fprintf(e.stdout, ", %d listed (--limit)", len(list.Conns))
	}
	fmt.Fprintln(e.stdout)
	return exitOK
}

// printConn writes one connection on one line, in the manner of conntrack -L:
//
//	TCP 10.1.0.2:40000 -> 10.2.0.5:8080 ESTABLISHED age 3s idle 2s left 86398s packets 3/1 bytes 138/40 rule "LAN to web" id 256
func printConn(w io.Writer, c *daemon.Conn) {
	src, dst := endpoint(c.Src, c.SrcPort, c.Proto), endpoint(c.Dst, c.DstPort, c.Proto)
	fmt.Fprintf(w, "%s %s -> %s %s age %s idle %s left %s packets %d/%d bytes %d/%d",
		c.Proto, src, dst, c.State, secs(c.Age), secs(c.Idle), secs(c.TimeoutLeft),
		c.PacketsOrig, c.PacketsReply, c.BytesOrig, c.BytesReply)
	if !c.Assured {
		fmt.Fprint(w, " unreplied")
	}
	if c.Rule != "" {
		fmt.Fprintf(w, " rule %q", c.Rule)
	}
	fmt.Fprintf(w, " id %d\n", c.ID)
}

func endpoint(addr string, port uint16, proto string) string {
	if proto != "TCP" && proto != "UDP" {
		return addr
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	return netip.AddrPortFrom(a, port).String()
}

// secs formats seconds as a duration rounded to what an administrator reads:
// whole seconds, or tenths under ten seconds.
func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func conntrackFlush(e *env, args []string) int {
	fs := newFlagSet(e, "conntrack flush", conntrackUsage)
	socket := socketFlag(fs)
	filter, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	var res daemon.FlushResult
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdConntrackFlush, Filter: filter}, &res); code != exitOK {
		return code
	}
	fmt.Fprintf(e.stdout, "flushed %d connection(s)\n", res.Flushed)
	return exitOK
}
