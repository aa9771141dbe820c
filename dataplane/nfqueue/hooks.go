package nfqueue

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The hooks are plain command lines for the iptables/ip6tables and nft tools, built
// by pure functions so that tests assert the exact text. See the package comment for
// why the tools rather than a netlink library.

// Names of everything keepstate owns in the kernel's rule sets. Nothing else is ever
// created, changed or deleted.
const (
	chainForward   = "KEEPSTATE-FWD"    // filter: forwarded packets to the queues
	chainInput     = "KEEPSTATE-IN"     // filter: packets addressed to the firewall (Input)
	chainOutput    = "KEEPSTATE-OUT"    // filter: packets the firewall sends (Input)
	chainRaw       = "KEEPSTATE-RAW"    // raw PREROUTING: bypass the kernel's conntrack
	chainRawOutput = "KEEPSTATE-RAWOUT" // raw OUTPUT: the same for our answers, or all the firewall sends (Input)
	nftTable       = "keepstate"        // nft: table inet keepstate holds every chain
	nftProbeTable  = "keepstate_probe"  // nft: scratch table of the native queue probe
)

// answerMark is the packet mark (SO_MARK) of the RSTs and ICMP errors keepstate
// sends for Deny rules. With Input the OUTPUT hook queues the firewall's own packets,
// and these answers must not come back to the engine, which has no connection for
// them: the OUTPUT chains let marked packets pass.
const answerMark = 0x4b530001 // "KS" 0001

// linkLocalICMPv6 are the ICMPv6 types a host needs to stay on its link at all
// (MLD 130-132 and 143, router and neighbour discovery 133-137). With Input they
// bypass the queue: a configuration that forgot them would cut the firewall off
// its IPv6 neighbours, and they are never forwarded.
var linkLocalICMPv6 = []int{130, 131, 132, 133, 134, 135, 136, 137, 143}

// hookSpec is what the hooks do, derived from Options.
type hookSpec struct {
	queueNum uint16
	queues   int  // >= 1
	bypass   bool // FailOpen: the kernel accepts while no program listens
	input    bool // also the firewall's own traffic (INPUT and OUTPUT)
	// cpuFanout chooses the queue by CPU instead of by address hash (queues > 1).
	cpuFanout bool
	// acceptMark, when not 0, is a mark the queue hooks accept without queueing:
	// packets a kernel fast path accepted.
	acceptMark uint32
}

// command is one external command line; stdin feeds nft scripts.
type command struct {
	name  string
	args  []string
	stdin string
}

func (c command) String() string {
	s := c.name
	if len(c.args) > 0 {
		s += " " + strings.Join(c.args, " ")
	}
	return s
}

// step is one install command and the commands that undo it.
type step struct {
	do   command
	undo []command
}

// ipChain is a chain keepstate owns in an iptables table: its rules (the
// arguments after "-A chain") and the built-in chain that jumps to it.
type ipChain struct {
	table, chain, parent string
	rules                [][]string
}

// iptablesChains are the chains for one address family, filter table first: the
// queue hooks are in place before the conntrack bypass, so that no packet is
// ever seen by half of the hooks.
func iptablesChains(v6 bool, s hookSpec) []ipChain {
	queue := append([]string{"-j", "NFQUEUE"}, nfqueueTargetArgs(s)...)
	var linkLocal [][]string
	if v6 {
		for _, typ := range linkLocalICMPv6 {
			linkLocal = append(linkLocal, []string{"-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", strconv.Itoa(typ), "-j", "RETURN"})
		}
	}
	var fast [][]string
	if s.acceptMark != 0 {
		fast = [][]string{{"-m", "mark", "--mark", fmt.Sprintf("%#x", s.acceptMark), "-j", "ACCEPT"}}
	}
	chains := []ipChain{{table: "filter", chain: chainForward, parent: "FORWARD", rules: append(fast, queue)}}
	if s.input {
		in := append([][]string{{"-i", "lo", "-j", "RETURN"}}, fast...)
		in = append(append(in, linkLocal...), queue)
		out := [][]string{{"-o", "lo", "-j", "RETURN"}, {"-m", "mark", "--mark", markHex, "-j", "RETURN"}}
		out = append(append(out, linkLocal...), queue)
		chains = append(chains,
			ipChain{table: "filter", chain: chainInput, parent: "INPUT", rules: in},
			ipChain{table: "filter", chain: chainOutput, parent: "OUTPUT", rules: out})
	}
	if s.input {
		chains = append(chains,
			ipChain{table: "raw", chain: chainRaw, parent: "PREROUTING", rules: [][]string{{"-i", "lo", "-j", "RETURN"}, {"-j", "NOTRACK"}}},
			ipChain{table: "raw", chain: chainRawOutput, parent: "OUTPUT", rules: [][]string{{"-o", "lo", "-j", "RETURN"}, {"-j", "NOTRACK"}}})
	} else {
		raw := [][]string{{"-m", "addrtype", "--dst-type", "UNICAST", "-j", "NOTRACK"}}
		if s.acceptMark != 0 {
			// The fast path's packets belong to connections keepstate tracks:
			// no need for addrtype's route lookup on each of them.
			raw = append([][]string{{"-m", "mark", "--mark", fmt.Sprintf("%#x", s.acceptMark), "-j", "NOTRACK"}}, raw...)
		}
		chains = append(chains,
			// raw PREROUTING runs before routing: only packets whose destination
			// routes as plain unicast (not one of our own addresses) will be forwarded.
			ipChain{table: "raw", chain: chainRaw, parent: "PREROUTING", rules: raw},
			// Only our answers: an RST for a connection the kernel never tracked
			// would be INVALID to rules that drop such packets on OUTPUT.
			ipChain{table: "raw", chain: chainRawOutput, parent: "OUTPUT", rules: [][]string{{"-m", "mark", "--mark", markHex, "-j", "NOTRACK"}}})
	}
	return chains
}

// iptablesJumpCheck is the command asking whether the jump to c exists already
// (left by a keepstate that died: its chains are then replaced in place).
func iptablesJumpCheck(tool string, c ipChain) command {
	return command{name: tool, args: []string{"-w", "-t", c.table, "-C", c.parent, "-j", c.chain}}
}

// iptablesSteps are the install steps for one address family (tool "iptables"
// or "ip6tables"): one iptables-restore --noflush per table, which the kernel
// applies as one transaction. Declaring a chain creates it, or empties it when
// it exists, so chains left by a keepstate that died are replaced with no moment
// without hooks; jumps are inserted first in their built-in chain unless
// jumpExists says they are there already.
func iptablesSteps(tool string, s hookSpec, jumpExists func(ipChain) bool) []step {
	ipt := func(args ...string) command { return command{name: tool, args: append([]string{"-w"}, args...)} }
	var steps []step
	chains := iptablesChains(tool == "ip6tables", s)
	for _, table := range []string{"filter", "raw"} {
		var script strings.Builder
		var jumps, decls, rules []string
		var undoJumps, undoChains []command
		for _, c := range chains {
			if c.table != table {
				continue
			}
			decls = append(decls, ":"+c.chain+" - [0:0]")
			for _, r := range c.rules {
				rules = append(rules, "-A "+c.chain+" "+strings.Join(r, " "))
			}
			if jumpExists == nil || !jumpExists(c) {
				jumps = append(jumps, "-I "+c.parent+" 1 -j "+c.chain)
			}
			undoJumps = append(undoJumps, ipt("-t", table, "-D", c.parent, "-j", c.chain))
			undoChains = append(undoChains, ipt("-t", table, "-F", c.chain), ipt("-t", table, "-X", c.chain))
		}
		script.WriteString("*" + table + "\n")
		for _, l := range slices.Concat(decls, rules, jumps) {
			script.WriteString(l + "\n")
		}
		script.WriteString("COMMIT\n")
		steps = append(steps, step{
			do:   command{name: tool + "-restore", args: []string{"-w", "--noflush"}, stdin: script.String()},
			undo: append(undoJumps, undoChains...),
		})
	}
	return steps
}

// iptablesRemoval removes chains (jumps first), for chains a keepstate that died
// left behind and this one does not use.
func iptablesRemoval(tool string, chains []ipChain) []command {
	ipt := func(args ...string) command { return command{name: tool, args: append([]string{"-w"}, args...)} }
	var cmds []command
	for _, c := range chains {
		cmds = append(cmds, ipt("-t", c.table, "-D", c.parent, "-j", c.chain))
	}
	for _, c := range chains {
		cmds = append(cmds, ipt("-t", c.table, "-F", c.chain), ipt("-t", c.table, "-X", c.chain))
	}
	return cmds
}

var markHex = fmt.Sprintf("%#x", answerMark)

// nfqueueTargetArgs are the xt NFQUEUE target's options. --queue-balance spreads
// packets with the kernel's symmetric address hash (see the package comment);
// --queue-bypass accepts packets while no program is bound to the queue.
func nfqueueTargetArgs(s hookSpec) []string {
	var a []string
	if s.queues > 1 {
		a = []string{"--queue-balance", fmt.Sprintf("%d:%d", s.queueNum, int(s.queueNum)+s.queues-1)}
		if s.cpuFanout {
			a = append(a, "--queue-cpu-fanout")
		}
	} else {
		a = []string{"--queue-num", strconv.Itoa(int(s.queueNum))}
	}
	if s.bypass {
		a = append(a, "--queue-bypass")
	}
	return a
}

// nftQueueStatement is the native queue statement for s.
func nftQueueStatement(s hookSpec) string {
	st := "queue num " + strconv.Itoa(int(s.queueNum))
	if s.queues > 1 {
		st += "-" + strconv.Itoa(int(s.queueNum)+s.queues-1)
	}
	var flags []string
	if s.bypass {
		flags = append(flags, "bypass")
	}
	if s.cpuFanout && s.queues > 1 {
		flags = append(flags, "fanout")
	}
	if len(flags) > 0 {
		st += " " + strings.Join(flags, ",")
	}
	return st
}

// nftScript is the whole table inet keepstate, replacing any left by an earlier run
// in the same transaction (the "table; delete table; table {...}" idiom: declaring
// first makes the delete succeed when there is nothing to replace).
func nftScript(s hookSpec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	q := nftQueueStatement(s)
	linkLocal := make([]string, len(linkLocalICMPv6))
	for i, t := range linkLocalICMPv6 {
		linkLocal[i] = strconv.Itoa(t)
	}
	ll := "icmpv6 type { " + strings.Join(linkLocal, ", ") + " } return"

	w("table inet %s", nftTable)
	w("delete table inet %s", nftTable)
	w("table inet %s {", nftTable)
	w("\tchain raw_prerouting {")
	w("\t\ttype filter hook prerouting priority raw; policy accept;")
	if s.input {
		w("\t\tiif \"lo\" return")
		w("\t\tnotrack")
	} else {
		if s.acceptMark != 0 {
			w("\t\tmeta mark %#x notrack", s.acceptMark)
		}
		w("\t\tfib daddr type unicast notrack")
	}
	w("\t}")
	w("\tchain raw_output {")
	w("\t\ttype filter hook output priority raw; policy accept;")
	if s.input {
		w("\t\toif \"lo\" return")
		w("\t\tnotrack")
	} else {
		w("\t\tmeta mark %s notrack", markHex)
	}
	w("\t}")
	fast := ""
	if s.acceptMark != 0 {
		fast = fmt.Sprintf("meta mark %#x accept", s.acceptMark)
	}
	w("\tchain queue_forward {")
	w("\t\ttype filter hook forward priority filter - 5; policy accept;")
	if fast != "" {
		w("\t\t%s", fast)
	}
	w("\t\t%s", q)
	w("\t}")
	if s.input {
		w("\tchain queue_input {")
		w("\t\ttype filter hook input priority filter - 5; policy accept;")
		w("\t\tiif \"lo\" return")
		if fast != "" {
			w("\t\t%s", fast)
		}
		w("\t\t%s", ll)
		w("\t\t%s", q)
		w("\t}")
		w("\tchain queue_output {")
		w("\t\ttype filter hook output priority filter - 5; policy accept;")
		w("\t\toif \"lo\" return")
		w("\t\tmeta mark %s return", markHex)
		w("\t\t%s", ll)
		w("\t\t%s", q)
		w("\t}")
	}
	w("}")
	return b.String()
}

func nftSteps(s hookSpec) []step {
	return []step{{
		do:   command{name: "nft", args: []string{"-f", "-"}, stdin: nftScript(s)},
		undo: []command{{name: "nft", args: []string{"delete", "table", "inet", nftTable}}},
	}}
}

// nftProbe tries the native queue expression in a scratch table without a hook and
// deletes the table in the same transaction: the kernel validates the expression
// when the rule is added, and nothing is left behind whatever the outcome.
func nftProbe() command {
	script := fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\ntable inet %[1]s {\n\tchain probe {\n\t\tqueue num 0 bypass\n\t}\n}\ndelete table inet %[1]s\n", nftProbeTable)
	return command{name: "nft", args: []string{"-f", "-"}, stdin: script}
}
