//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Addresses of the lab. Client and server networks are the firewall's LAN and DMZ.
var (
	ClientAddr  = netip.MustParseAddr("10.201.1.2")
	FirewallLAN = netip.MustParseAddr("10.201.1.1")
	FirewallDMZ = netip.MustParseAddr("10.201.2.1")
	ServerAddr  = netip.MustParseAddr("10.201.2.2")

	ClientNet = netip.MustParsePrefix("10.201.1.0/24")
	ServerNet = netip.MustParsePrefix("10.201.2.0/24")

	bypassClient = netip.MustParseAddr("10.201.3.1")
	bypassServer = netip.MustParseAddr("10.201.3.2")
)

// Interface names inside the firewall namespace, as the configuration names them.
const (
	LANDevice = "lan0"
	DMZDevice = "dmz0"
)

// DefaultPrefix starts the name of every namespace the lab creates.
const DefaultPrefix = "kslab"

// Options shape a topology.
type Options struct {
	// Prefix of the namespace names (default DefaultPrefix); names are
	// PREFIX-PID-N-{c,f,s}.
	Prefix string
	// Bypass adds the one-way path around the firewall: client -> server
	// packets go directly, replies come back through the firewall.
	Bypass bool
}

// Topology is a client, a firewall and a server namespace joined by veth pairs.
// The firewall forwards between them (ip_forward=1) with nothing filtering yet.
type Topology struct {
	Client, Firewall, Server string // namespace names
	Bypass                   bool

	closeOnce sync.Once
	closeErr  error
}

var topoSeq atomic.Int32

// New builds a topology. On failure nothing is left behind. The caller must
// Close it (defer, t.Cleanup).
func New(ctx context.Context, o Options) (*Topology, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "/- ") {
		return nil, fmt.Errorf("lab: prefix %q: no '/', '-' or spaces", o.Prefix)
	}
	RemoveStale(ctx, o.Prefix)
	id := fmt.Sprintf("%s-%d-%d", o.Prefix, os.Getpid(), topoSeq.Add(1))
	t := &Topology{Client: id + "-c", Firewall: id + "-f", Server: id + "-s", Bypass: o.Bypass}
	if err := t.build(ctx); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context) error {
	c, f, s := t.Client, t.Firewall, t.Server
	var cmds [][]string
	add := func(args ...string) { cmds = append(cmds, args) }
	for _, ns := range []string{c, f, s} {
		add("ip", "netns", "add", ns)
	}
	for _, ns := range []string{c, f, s} {
		add("ip", "-n", ns, "link", "set", "lo", "up")
		// IPv6 is not used: no router solicitations or DAD noise on the veths.
		add("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	add("ip", "-n", f, "link", "add", LANDevice, "type", "veth", "peer", "name", "eth0", "netns", c)
	add("ip", "-n", f, "link", "add", DMZDevice, "type", "veth", "peer", "name", "eth0", "netns", s)
	addr := func(ns string, a netip.Addr, bits int, dev string) {
		add("ip", "-n", ns, "addr", "add", netip.PrefixFrom(a, bits).String(), "dev", dev)
		add("ip", "-n", ns, "link", "set", dev, "up")
	}
	addr(c, ClientAddr, 24, "eth0")
	addr(f, FirewallLAN, 24, LANDevice)
	addr(f, FirewallDMZ, 24, DMZDevice)
	addr(s, ServerAddr, 24, "eth0")
	add("ip", "-n", c, "route", "add", "default", "via", FirewallLAN.String())
	add("ip", "-n", s, "route", "add", "default", "via", FirewallDMZ.String())
	add("ip", "netns", "exec", f, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	if t.Bypass {
		add("ip", "-n", c, "link", "add", "byp0", "type", "veth", "peer", "name", "byp0", "netns", s)
		addr(c, bypassClient, 30, "byp0")
		addr(s, bypassServer, 30, "byp0")
		// Forward direction only: the client reaches the server network around
		// the firewall, from its LAN address (else the kernel would pick byp0's
		// and the server would answer on byp0 too); the server's default route
		// still points at the firewall.
		add("ip", "-n", c, "route", "add", ServerNet.String(), "via", bypassServer.String(), "dev", "byp0", "src", ClientAddr.String())
		// The server accepts packets from the client on byp0 although its route
		// back to the client leaves through eth0 (no reverse-path filter).
		add("ip", "netns", "exec", s, "sysctl", "-q", "-w",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.byp0.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
	}
	for _, args := range cmds {
		if _, err := run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Close deletes the namespaces, and with them their veths and anything still
// running inside that holds no reference to them. It is safe to call twice.
func (t *Topology) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for _, ns := range []string{t.Client, t.Firewall, t.Server} {
			if _, err := os.Stat(nsPath(ns)); err != nil {
				continue
			}
			// Not bound to a context: teardown must happen after Ctrl-C too.
			if _, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// RemoveStale deletes namespaces named PREFIX-PID-... whose process no longer
// exists: the leftovers of a run that was killed before it could clean up.
func RemoveStale(ctx context.Context, prefix string) []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if _, err := run(ctx, "ip", "netns", "del", e.Name()); err == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Exec runs a command inside namespace ns (ip netns exec) and returns its output.
func (t *Topology) Exec(ctx context.Context, ns string, args ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// run runs a command and returns its combined output; the error quotes it.
func run(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Missing names the tools the lab needs that are not installed, and says
// whether this process may build namespaces; empty when it can run.
func Missing(tools ...string) string {
	if os.Geteuid() != 0 {
		return "the lab needs root (it builds network namespaces and netfilter hooks)"
	}
	var missing []string
	for _, tool := range append([]string{"ip", "iptables", "sysctl"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return "the lab needs these tools: " + strings.Join(missing, ", ")
	}
	return ""
}
