package nfqueue

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func commandLines(steps []step) (do, undo []string) {
	for _, s := range steps {
		do = append(do, s.do.String())
	}
	for _, c := range staleCleanup(steps) {
		undo = append(undo, c.String())
	}
	return do, undo
}

func TestIptablesSteps(t *testing.T) {
	tests := []struct {
		name string
		tool string
		spec hookSpec
		do   []string
		undo []string
	}{
		{
			name: "one queue, fail closed, forwarded only",
			tool: "iptables",
			spec: hookSpec{queueNum: 3, queues: 1},
			do: []string{
				"iptables -w -t filter -N KEEPSTATE-FWD",
				"iptables -w -t filter -A KEEPSTATE-FWD -j NFQUEUE --queue-num 3",
				"iptables -w -t filter -I FORWARD 1 -j KEEPSTATE-FWD",
				"iptables -w -t raw -N KEEPSTATE-RAW",
				"iptables -w -t raw -A KEEPSTATE-RAW -m addrtype --dst-type UNICAST -j NOTRACK",
				"iptables -w -t raw -I PREROUTING 1 -j KEEPSTATE-RAW",
				"iptables -w -t raw -N KEEPSTATE-RAWOUT",
				"iptables -w -t raw -A KEEPSTATE-RAWOUT -m mark --mark 0x4b530001 -j NOTRACK",
				"iptables -w -t raw -I OUTPUT 1 -j KEEPSTATE-RAWOUT",
			},
			undo: []string{
				"iptables -w -t raw -D OUTPUT -j KEEPSTATE-RAWOUT",
				"iptables -w -t raw -F KEEPSTATE-RAWOUT",
				"iptables -w -t raw -X KEEPSTATE-RAWOUT",
				"iptables -w -t raw -D PREROUTING -j KEEPSTATE-RAW",
				"iptables -w -t raw -F KEEPSTATE-RAW",
				"iptables -w -t raw -X KEEPSTATE-RAW",
				"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD",
				"iptables -w -t filter -F KEEPSTATE-FWD",
				"iptables -w -t filter -X KEEPSTATE-FWD",
			},
		},
		{
			name: "four queues, fail open",
			tool: "ip6tables",
			spec: hookSpec{queueNum: 10, queues: 4, bypass: true},
			do: []string{
				"ip6tables -w -t filter -N KEEPSTATE-FWD",
				"ip6tables -w -t filter -A KEEPSTATE-FWD -j NFQUEUE --queue-balance 10:13 --queue-bypass",
				"ip6tables -w -t filter -I FORWARD 1 -j KEEPSTATE-FWD",
				"ip6tables -w -t raw -N KEEPSTATE-RAW",
				"ip6tables -w -t raw -A KEEPSTATE-RAW -m addrtype --dst-type UNICAST -j NOTRACK",
				"ip6tables -w -t raw -I PREROUTING 1 -j KEEPSTATE-RAW",
				"ip6tables -w -t raw -N KEEPSTATE-RAWOUT",
				"ip6tables -w -t raw -A KEEPSTATE-RAWOUT -m mark --mark 0x4b530001 -j NOTRACK",
				"ip6tables -w -t raw -I OUTPUT 1 -j KEEPSTATE-RAWOUT",
			},
		},
		{
			name: "input, IPv4",
			tool: "iptables",
			spec: hookSpec{queueNum: 0, queues: 2, input: true},
			do: []string{
				"iptables -w -t filter -N KEEPSTATE-FWD",
				"iptables -w -t filter -A KEEPSTATE-FWD -j NFQUEUE --queue-balance 0:1",
				"iptables -w -t filter -I FORWARD 1 -j KEEPSTATE-FWD",
				"iptables -w -t filter -N KEEPSTATE-IN",
				"iptables -w -t filter -A KEEPSTATE-IN -i lo -j RETURN",
				"iptables -w -t filter -A KEEPSTATE-IN -j NFQUEUE --queue-balance 0:1",
				"iptables -w -t filter -I INPUT 1 -j KEEPSTATE-IN",
				"iptables -w -t filter -N KEEPSTATE-OUT",
				"iptables -w -t filter -A KEEPSTATE-OUT -o lo -j RETURN",
				"iptables -w -t filter -A KEEPSTATE-OUT -m mark --mark 0x4b530001 -j RETURN",
				"iptables -w -t filter -A KEEPSTATE-OUT -j NFQUEUE --queue-balance 0:1",
				"iptables -w -t filter -I OUTPUT 1 -j KEEPSTATE-OUT",
				"iptables -w -t raw -N KEEPSTATE-RAW",
				"iptables -w -t raw -A KEEPSTATE-RAW -i lo -j RETURN",
				"iptables -w -t raw -A KEEPSTATE-RAW -j NOTRACK",
				"iptables -w -t raw -I PREROUTING 1 -j KEEPSTATE-RAW",
				"iptables -w -t raw -N KEEPSTATE-RAWOUT",
				"iptables -w -t raw -A KEEPSTATE-RAWOUT -o lo -j RETURN",
				"iptables -w -t raw -A KEEPSTATE-RAWOUT -j NOTRACK",
				"iptables -w -t raw -I OUTPUT 1 -j KEEPSTATE-RAWOUT",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			do, undo := commandLines(iptablesSteps(tc.tool, tc.spec))
			if got, want := strings.Join(do, "\n"), strings.Join(tc.do, "\n"); got != want {
				t.Errorf("install:\n%s\nwant:\n%s", got, want)
			}
			if tc.undo != nil {
				if got, want := strings.Join(undo, "\n"), strings.Join(tc.undo, "\n"); got != want {
					t.Errorf("removal:\n%s\nwant:\n%s", got, want)
				}
			}
		})
	}
}

// With Input, IPv6 link-local control traffic (MLD, ND) bypasses the queue in
// both directions.
func TestIptablesStepsInputIPv6SkipsLinkLocal(t *testing.T) {
	do, _ := commandLines(iptablesSteps("ip6tables", hookSpec{queues: 1, input: true}))
	all := strings.Join(do, "\n")
	for _, chain := range []string{chainInput, chainOutput} {
		for _, typ := range []string{"130", "131", "132", "133", "134", "135", "136", "137", "143"} {
			want := "ip6tables -w -t filter -A " + chain + " -p ipv6-icmp -m icmp6 --icmpv6-type " + typ + " -j RETURN"
			if !strings.Contains(all, want+"\n") {
				t.Errorf("missing %q", want)
			}
		}
	}
	// ... and come before the queue rule of their chain.
	in := strings.Index(all, "-A KEEPSTATE-IN -p ipv6-icmp")
	q := strings.Index(all, "-A KEEPSTATE-IN -j NFQUEUE")
	if in < 0 || q < 0 || in > q {
		t.Errorf("link-local bypass must precede the queue rule:\n%s", all)
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

// fakeRunner records commands and fails those whose text contains a substring.
type fakeRunner struct {
	ran    []string
	failOn []string
}

func (f *fakeRunner) run(_ context.Context, c command) error {
	s := c.String()
	f.ran = append(f.ran, s)
	for _, bad := range f.failOn {
		if strings.Contains(s, bad) {
			return errors.New("failed: " + s)
		}
	}
	return nil
}

// A failure half-way undoes exactly the steps done, newest first.
func TestInstallRollsBackHalfWay(t *testing.T) {
	f := &fakeRunner{failOn: []string{"-N KEEPSTATE-RAW"}}
	h := hookSet{run: f.run}
	err := h.install(context.Background(), iptablesSteps("iptables", hookSpec{queues: 1}))
	if err == nil || !strings.Contains(err.Error(), "-N KEEPSTATE-RAW") {
		t.Fatalf("install error = %v", err)
	}
	want := []string{
		"iptables -w -t filter -N KEEPSTATE-FWD",
		"iptables -w -t filter -A KEEPSTATE-FWD -j NFQUEUE --queue-num 0",
		"iptables -w -t filter -I FORWARD 1 -j KEEPSTATE-FWD",
		"iptables -w -t raw -N KEEPSTATE-RAW", // fails
		"iptables -w -t filter -D FORWARD -j KEEPSTATE-FWD",
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

// remove tries every undo even when one fails, and reports the failures.
func TestRemoveTriesEverything(t *testing.T) {
	f := &fakeRunner{}
	h := hookSet{run: f.run}
	if err := h.install(context.Background(), iptablesSteps("iptables", hookSpec{queues: 1})); err != nil {
		t.Fatal(err)
	}
	f.ran, f.failOn = nil, []string{"-D FORWARD"}
	err := h.remove(context.Background())
	if err == nil || !strings.Contains(err.Error(), "-D FORWARD") {
		t.Fatalf("remove error = %v", err)
	}
	if len(f.ran) != 9 {
		t.Errorf("ran %d undo commands, want 9:\n%s", len(f.ran), strings.Join(f.ran, "\n"))
	}
	if err := h.remove(context.Background()); err != nil || len(f.ran) != 9 {
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
				if !strings.HasPrefix(do[0], "iptables ") || !strings.HasPrefix(do[len(do)-1], "ip6tables ") {
					t.Errorf("iptables backend must hook both families: %q ... %q", do[0], do[len(do)-1])
				}
			}
		})
	}
}

// Stale cleanup covers every chain of the widest configuration, for each tool
// present, and deletes duplicate jumps.
func TestRemoveStale(t *testing.T) {
	f := &fakeRunner{failOn: []string{"-D INPUT"}} // the second delete of a jump fails: there was one
	removeStale(context.Background(), f.run, func(name string) bool { return name != "ip6tables" })
	got := strings.Join(f.ran, "\n")
	for _, want := range []string{
		"nft delete table inet keepstate",
		"iptables -w -t filter -X KEEPSTATE-IN",
		"iptables -w -t filter -X KEEPSTATE-OUT",
		"iptables -w -t raw -X KEEPSTATE-RAWOUT",
		"iptables -w -t filter -X KEEPSTATE-FWD",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("cleanup lacks %q", want)
		}
	}
	if strings.Contains(got, "ip6tables") {
		t.Errorf("cleanup ran a missing tool:\n%s", got)
	}
	if n := strings.Count(got, "-D FORWARD -j KEEPSTATE-FWD"); n != maxDuplicateJumps {
		t.Errorf("jump deleted %d times while it succeeded, want %d", n, maxDuplicateJumps)
	}
	if n := strings.Count(got, "-D INPUT -j KEEPSTATE-IN"); n != 1 {
		t.Errorf("failing jump delete tried %d times, want 1", n)
	}
}
