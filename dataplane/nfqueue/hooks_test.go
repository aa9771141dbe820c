package nfqueue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func commandLines(steps []step) (do, undo []string) {
	for _, s := range steps {
		do = append(do, s.do.String())
	}
	for i := len(steps) - 1; i >= 0; i-- {
		for _, c := range steps[i].undo {
			undo = append(undo, c.String())
		}
	}
	return do, undo
}

func TestIptablesSteps(t *testing.T) {
	tests := []struct {
		name   string
		tool   string
		spec   hookSpec
		exists []string // chains whose jump exists already
		filter string   // iptables-restore input for the filter table
		raw    string
		undo   []string
	}{
		{
			name: "one queue, fail closed, forwarded only",
			tool: "iptables",
			spec: hookSpec{queueNum: 3, queues: 1},
			filter: "*filter\n" +
				":KEEPSTATE-FWD - [0:0]\n" +
				"-A KEEPSTATE-FWD -j NFQUEUE --queue-num 3\n" +
				"-I FORWARD 1 -j KEEPSTATE-FWD\n" +
				"COMMIT\n",
			raw: "*raw\n" +
				":KEEPSTATE-RAW - [0:0]\n" +
				":KEEPSTATE-RAWOUT - [0:0]\n" +
				"-A KEEPSTATE-RAW -m addrtype --dst-type UNICAST -j NOTRACK\n" +
				"-A KEEPSTATE-RAWOUT -m mark --mark 0x4b530001 -j NOTRACK\n" +
				"-I PREROUTING 1 -j KEEPSTATE-RAW\n" +
				"-I OUTPUT 1 -j KEEPSTATE-RAWOUT\n" +
				"COMMIT\n",
			undo: []string{
				"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW",
				"iptables -w -t raw -D OUTPUT -j KEEPSTATE-RAWOUT",
				"iptables -w -t raw -F KEEPSTATE-RAW",
				"iptables -w -t raw -X KEEPSTATE-RAW",
				"iptables -w -t raw -F KEEPSTATE-RAWOUT",
				"iptables -w -t raw -X KEEPSTATE-RAWOUT",
				"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD",
				"iptables -w -t filter -F KEEPSTATE-FWD",
				"iptables -w -t filter -X KEEPSTATE-FWD",
			},
		},
		{
			name:   "four queues, fail open, replacing a live jump",
			tool:   "ip6tables",
			spec:   hookSpec{queueNum: 10, queues: 4, bypass: true},
			exists: []string{chainForward},
			filter: "*filter\n" +
				":KEEPSTATE-FWD - [0:0]\n" +
				"-A KEEPSTATE-FWD -j NFQUEUE --queue-balance 10:13 --queue-bypass\n" +
				"COMMIT\n",
		},
		{
			name: "input, IPv4",
			tool: "iptables",
			spec: hookSpec{queueNum: 0, queues: 2, input: true},
			filter: "*filter\n" +
				":KEEPSTATE-FWD - [0:0]\n" +
				":KEEPSTATE-IN - [0:0]\n" +
				":KEEPSTATE-OUT - [0:0]\n" +
				"-A KEEPSTATE-FWD -j NFQUEUE --queue-balance 0:1\n" +
				"-A KEEPSTATE-IN -i lo -j RETURN\n" +
				"-A KEEPSTATE-IN -j NFQUEUE --queue-balance 0:1\n" +
				"-A KEEPSTATE-OUT -o lo -j RETURN\n" +
				"-A KEEPSTATE-OUT -m mark --mark 0x4b530001 -j RETURN\n" +
				"-A KEEPSTATE-OUT -j NFQUEUE --queue-balance 0:1\n" +
				"-I FORWARD 1 -j KEEPSTATE-FWD\n" +
				"-I INPUT 1 -j KEEPSTATE-IN\n" +
				"-I OUTPUT 1 -j KEEPSTATE-OUT\n" +
				"COMMIT\n",
			raw: "*raw\n" +
				":KEEPSTATE-RAW - [0:0]\n" +
				":KEEPSTATE-RAWOUT - [0:0]\n" +
				"-A KEEPSTATE-RAW -i lo -j RETURN\n" +
				"-A KEEPSTATE-RAW -j NOTRACK\n" +
				"-A KEEPSTATE-RAWOUT -o lo -j RETURN\n" +
				"-A KEEPSTATE-RAWOUT -j NOTRACK\n" +
				"-I PREROUTING 1 -j KEEPSTATE-RAW\n" +
				"-I OUTPUT 1 -j KEEPSTATE-RAWOUT\n" +
				"COMMIT\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exists := func(c ipChain) bool { return slices.Contains(tc.exists, c.chain) }
			steps := iptablesSteps(tc.tool, tc.spec, exists)
			if len(steps) != 2 {
				t.Fatalf("%d steps, want one per table", len(steps))
			}
			for i, want := range []string{tc.filter, tc.raw} {
				if got := steps[i].do.String(); got != tc.tool+"-restore -w --noflush" {
					t.Errorf("step %d runs %q", i, got)
				}
				if want != "" && steps[i].do.stdin != want {
					t.Errorf("step %d script:\n%s\nwant:\n%s", i, steps[i].do.stdin, want)
				}
			}
			if tc.undo != nil {
				if _, undo := commandLines(steps); strings.Join(undo, "\n") != strings.Join(tc.undo, "\n") {
					t.Errorf("removal:\n%s\nwant:\n%s", strings.Join(undo, "\n"), strings.Join(tc.undo, "\n"))
				}
			}
		})
	}
}

// With Input, IPv6 link-local control traffic (MLD, ND) bypasses the queue in
// both directions, before the queue rule.
func TestIptablesStepsInputIPv6SkipsLinkLocal(t *testing.T) {
	script := iptablesSteps("ip6tables", hookSpec{queues: 1, input: true}, nil)[0].do.stdin
	for _, chain := range []string{chainInput, chainOutput} {
		for _, typ := range []string{"130", "131", "132", "133", "134", "135", "136", "137", "143"} {
			want := "-A " + chain + " -p ipv6-icmp -m icmp6 --icmpv6-type " + typ + " -j RETURN\n"
			if !strings.Contains(script, want) {
				t.Errorf("missing %q", want)
			}
		}
		ll := strings.Index(script, "-A "+chain+" -p ipv6-icmp")
		q := strings.Index(script, "-A "+chain+" -j NFQUEUE")
		if ll < 0 || q < 0 || ll > q {
			t.Errorf("%s: link-local bypass must precede the queue rule:\n%s", chain, script)
		}
	}
	if v4 := iptablesSteps("iptables", hookSpec{queues: 1, input: true}, nil)[0].do.stdin; strings.Contains(v4, "icmp6") {
		t.Errorf("IPv4 rules with ICMPv6 matches:\n%s", v4)
	}
}

func TestNftScript(t *testing.T) {
	tests := []struct {
		name string
		spec hookSpec
		want string
	}{
		{
			name: "forwarded only, two queues, fail closed",
			spec: hookSpec{queueNum: 0, queues: 2},
			want: `table inet keepstate
delete table inet keepstate
table inet keepstate {
	chain raw_prerouting {
		type filter hook prerouting priority raw; policy accept;
		fib daddr type unicast notrack
	}
	chain raw_output {
		type filter hook output priority raw; policy accept;
		meta mark 0x4b530001 notrack
	}
	chain queue_forward {
		type filter hook forward priority filter - 5; policy accept;
		queue num 0-1
	}
}
`,
		},
		{
			name: "input, one queue, fail open",
			spec: hookSpec{queueNum: 7, queues: 1, bypass: true, input: true},
			want: `table inet keepstate
delete table inet keepstate
table inet keepstate {
	chain raw_prerouting {
		type filter hook prerouting priority raw; policy accept;
		iif "lo" return
		notrack
	}
	chain raw_output {
		type filter hook output priority raw; policy accept;
		oif "lo" return
		notrack
	}
	chain queue_forward {
		type filter hook forward priority filter - 5; policy accept;
		queue num 7 bypass
	}
	chain queue_input {
		type filter hook input priority filter - 5; policy accept;
		iif "lo" return
		icmpv6 type { 130, 131, 132, 133, 134, 135, 136, 137, 143 } return
		queue num 7 bypass
	}
	chain queue_output {
		type filter hook output priority filter - 5; policy accept;
		oif "lo" return
		meta mark 0x4b530001 return
		icmpv6 type { 130, 131, 132, 133, 134, 135, 136, 137, 143 } return
		queue num 7 bypass
	}
}
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nftScript(tc.spec); got != tc.want {
				t.Errorf("script:\n%s\nwant:\n%s", got, tc.want)
			}
			steps := nftSteps(tc.spec)
			if len(steps) != 1 || steps[0].do.String() != "nft -f -" || steps[0].do.stdin != tc.want {
				t.Errorf("steps = %+v", steps)
			}
			if _, undo := commandLines(steps); strings.Join(undo, "\n") != "nft delete table inet keepstate" {
				t.Errorf("removal = %q", undo)
			}
		})
	}
}

func TestNftProbeLeavesNothing(t *testing.T) {
	c := nftProbe()
	want := "table inet keepstate_probe\ndelete table inet keepstate_probe\ntable inet keepstate_probe {\n\tchain probe {\n\t\tqueue num 0 bypass\n\t}\n}\ndelete table inet keepstate_probe\n"
	if c.String() != "nft -f -" || c.stdin != want {
		t.Errorf("probe = %q with script\n%s", c, c.stdin)
	}
}

// fakeRunner records commands (a restore shows its table) and fails those whose
// text contains a substring. A jump deletion succeeds dupJumps extra times
// before it fails, like a jump inserted more than once.
type fakeRunner struct {
	ran      []string
	failOn   []string
	dupJumps int
	deleted  map[string]int
}

func (f *fakeRunner) run(_ context.Context, c command) error {
	s := c.String()
	if strings.HasSuffix(c.name, "-restore") {
		s += " <" + strings.SplitN(c.stdin, "\n", 2)[0] + ">"
	}
	f.ran = append(f.ran, s)
	for _, bad := range f.failOn {
		if strings.Contains(s, bad) {
			return errors.New("failed: " + s)
		}
	}
	if isJumpDelete(c) {
		if f.deleted == nil {
			f.deleted = map[string]int{}
		}
		f.deleted[s]++
		if f.deleted[s] > f.dupJumps+1 {
			return errors.New("no such rule")
		}
	}
	return nil
}

// A failure half-way undoes exactly the steps done, newest first.
func TestInstallRollsBackHalfWay(t *testing.T) {
	f := &fakeRunner{failOn: []string{"*raw"}}
	h := hookSet{run: f.run}
	err := h.install(context.Background(), iptablesSteps("iptables", hookSpec{queues: 1}, nil))
	if err == nil || !strings.Contains(err.Error(), "iptables-restore") {
		t.Fatalf("install error = %v", err)
	}
	want := []string{
		"iptables-restore -w --noflush <*filter>",
		"iptables-restore -w --noflush <*raw>", // fails
		"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD",
		"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD", // fails: it was the only one
		"iptables -w -t filter -F KEEPSTATE-FWD",
		"iptables -w -t filter -X KEEPSTATE-FWD",
	}
	if got := strings.Join(f.ran, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("ran:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if len(h.installed) != 0 {
		t.Errorf("installed after rollback: %d steps", len(h.installed))
	}
}

// remove tries every undo even when one fails, reports the failures, and
// deletes duplicate jumps.
func TestRemoveTriesEverything(t *testing.T) {
	f := &fakeRunner{}
	h := hookSet{run: f.run}
	if err := h.install(context.Background(), iptablesSteps("iptables", hookSpec{queues: 1}, nil)); err != nil {
		t.Fatal(err)
	}
	f.ran, f.failOn, f.dupJumps = nil, []string{"-D FORWARD"}, 1
	err := h.remove(context.Background())
	if err == nil || !strings.Contains(err.Error(), "-D FORWARD") {
		t.Fatalf("remove error = %v", err)
	}
	want := []string{
		"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW",
		"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW", // a duplicate jump
		"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW", // fails: no more
		"iptables -w -t raw -D OUTPUT -j KEEPSTATE-RAWOUT",
		"iptables -w -t raw -D OUTPUT -j KEEPSTATE-RAWOUT",
		"iptables -w -t raw -D OUTPUT -j KEEPSTATE-RAWOUT",
		"iptables -w -t raw -F KEEPSTATE-RAW",
		"iptables -w -t raw -X KEEPSTATE-RAW",
		"iptables -w -t raw -F KEEPSTATE-RAWOUT",
		"iptables -w -t raw -X KEEPSTATE-RAWOUT",
		"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD", // fails
		"iptables -w -t filter -F KEEPSTATE-FWD",
		"iptables -w -t filter -X KEEPSTATE-FWD",
	}
	if got := strings.Join(f.ran, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("ran:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	f.ran = nil
	if err := h.remove(context.Background()); err != nil || len(f.ran) != 0 {
		t.Errorf("second remove: %v after %d commands", err, len(f.ran))
	}
}

func TestChooseBackend(t *testing.T) {
	all := func(string) bool { return true }
	noNft := func(name string) bool { return name != "nft" }
	none := func(string) bool { return false }
	tests := []struct {
		name    string
		want    string
		have    tools
		failOn  []string
		backend string
		err     string
	}{
		{"auto takes nft when the kernel has the queue expression", "auto", all, nil, describeNft, ""},
		{"empty means auto", "", all, nil, describeNft, ""},
		{"auto falls back to iptables", "auto", all, []string{"nft -f -"}, describeIptables, ""},
		{"auto without nft tool", "auto", noNft, nil, describeIptables, ""},
		{"nft required but missing in kernel", "nft", all, []string{"nft -f -"}, "", "no native nftables queue"},
		{"iptables required", "iptables", all, nil, describeIptables, ""},
		{"nothing installed", "auto", none, nil, "", "no backend"},
		{"unknown", "ebpf", all, nil, "", "unknown backend"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRunner{failOn: tc.failOn}
			c, err := chooseBackend(context.Background(), tc.want, hookSpec{queues: 1}, f.run, tc.have)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.describe != tc.backend {
				t.Fatalf("got %q, %v; want %q", c.describe, err, tc.backend)
			}
			if tc.backend == describeIptables {
				do, _ := commandLines(c.steps)
				if len(do) != 4 || !strings.HasPrefix(do[0], "iptables-restore ") || !strings.HasPrefix(do[3], "ip6tables-restore ") {
					t.Errorf("iptables backend must hook both families: %q", do)
				}
			}
		})
	}
}

// What a keepstate that died left and the new install does not replace is
// removed afterwards: the other backend's hooks, and chains of a wider
// configuration; replaced chains are not touched.
func TestStaleCommands(t *testing.T) {
	f := &fakeRunner{failOn: []string{"nft -f -"}} // no native queue: iptables
	c, err := chooseBackend(context.Background(), "auto", hookSpec{queues: 1}, f.run, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for _, cmd := range c.stale {
		stale = append(stale, cmd.String())
	}
	want := []string{
		"iptables -w -t filter -D INPUT -j KEEPSTATE-IN",
		"iptables -w -t filter -D OUTPUT -j KEEPSTATE-OUT",
		"iptables -w -t filter -F KEEPSTATE-IN",
		"iptables -w -t filter -X KEEPSTATE-IN",
		"iptables -w -t filter -F KEEPSTATE-OUT",
		"iptables -w -t filter -X KEEPSTATE-OUT",
		"ip6tables -w -t filter -D INPUT -j KEEPSTATE-IN",
		"ip6tables -w -t filter -D OUTPUT -j KEEPSTATE-OUT",
		"ip6tables -w -t filter -F KEEPSTATE-IN",
		"ip6tables -w -t filter -X KEEPSTATE-IN",
		"ip6tables -w -t filter -F KEEPSTATE-OUT",
		"ip6tables -w -t filter -X KEEPSTATE-OUT",
		"nft delete table inet keepstate",
	}
	if got := strings.Join(stale, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("stale:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// The jump checks ran for every chain of both families.
	if n := strings.Count(strings.Join(f.ran, "\n"), " -C "); n != 6 {
		t.Errorf("%d jump checks, want 6:\n%s", n, strings.Join(f.ran, "\n"))
	}

	// With the nft backend every iptables chain is stale.
	f = &fakeRunner{}
	c, err = chooseBackend(context.Background(), "nft", hookSpec{queues: 1}, f.run, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, cmd := range c.stale {
		all += cmd.String() + "\n"
	}
	for _, chain := range []string{chainForward, chainInput, chainOutput, chainRaw, chainRawOutput} {
		for _, tool := range []string{"iptables", "ip6tables"} {
			if !strings.Contains(all, tool+" -w -t ") || !strings.Contains(all, "-X "+chain+"\n") {
				t.Errorf("nft backend: %s chain %s not removed:\n%s", tool, chain, all)
			}
		}
	}
}

// RemoveHooks (keepstate unhook) removes every chain any configuration makes,
// with both tools and both families, and reports only what was there.
func TestRemoveAllReportsWhatWasThere(t *testing.T) {
	f := &fakeRunner{failOn: []string{"ip6tables", "KEEPSTATE-IN", "KEEPSTATE-OUT", "KEEPSTATE-RAWOUT", "nft"}}
	done := removeAll(context.Background(), f.run, func(string) bool { return true })
	want := []string{
		"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD",
		"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW",
		"iptables -w -t filter -F KEEPSTATE-FWD", "iptables -w -t filter -X KEEPSTATE-FWD",
		"iptables -w -t raw -F KEEPSTATE-RAW", "iptables -w -t raw -X KEEPSTATE-RAW",
	}
	if !slices.Equal(done, want) {
		t.Errorf("removed %q, want %q", done, want)
	}
	tried := strings.Join(f.ran, "\n")
	for _, c := range []string{"ip6tables -w -t filter -D INPUT -j KEEPSTATE-IN", "nft delete table inet keepstate"} {
		if !strings.Contains(tried, c) {
			t.Errorf("did not try %q:\n%s", c, tried)
		}
	}
	if done := removeAll(context.Background(), f.run, func(string) bool { return false }); len(done) != 0 {
		t.Errorf("without any tool: %q", done)
	}
}

// With a fast path the hooks accept its mark before queueing, and the raw chain
// exempts its packets from the kernel's tracking without a route lookup.
func TestHooksAcceptFastPathMark(t *testing.T) {
	s := hookSpec{queueNum: 0, queues: 1, acceptMark: 0x4b530002}
	nft := nftScript(s)
	for _, want := range []string{
		"\t\tmeta mark 0x4b530002 notrack\n\t\tfib daddr type unicast notrack\n",
		"\t\tmeta mark 0x4b530002 accept\n\t\tqueue num 0\n",
	} {
		if !strings.Contains(nft, want) {
			t.Errorf("nft script lacks %q:\n%s", want, nft)
		}
	}
	var fwd, raw ipChain
	for _, c := range iptablesChains(false, s) {
		switch c.chain {
		case chainForward:
			fwd = c
		case chainRaw:
			raw = c
		}
	}
	if got := strings.Join(fwd.rules[0], " "); got != "-m mark --mark 0x4b530002 -j ACCEPT" {
		t.Errorf("KEEPSTATE-FWD starts with %q", got)
	}
	if got := strings.Join(raw.rules[0], " "); got != "-m mark --mark 0x4b530002 -j NOTRACK" {
		t.Errorf("KEEPSTATE-RAW starts with %q", got)
	}
	s.input = true
	for _, c := range iptablesChains(false, s) {
		if c.chain == chainInput && strings.Join(c.rules[1], " ") != "-m mark --mark 0x4b530002 -j ACCEPT" {
			t.Errorf("KEEPSTATE-IN: %v", c.rules)
		}
	}
}
