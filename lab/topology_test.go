//go:build linux

package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// Without a daemon the firewall namespace forwards: the echo service answers, and
// with the bypass the client's packets leave through byp0 while the server's
// replies still come back through the firewall.
func TestTopologyForwards(t *testing.T) {
	needLab(t)
	for _, bypass := range []bool{false, true} {
		topo := testTopology(t, Options{Bypass: bypass})
		srv, err := StartServer(topo.Server)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Dial(t.Context(), topo.Client, ServerAddr, PortEcho, 3*time.Second, nil)
		if err != nil {
			t.Fatalf("bypass=%v: dial: %v", bypass, err)
		}
		if err := RoundTrip(c, "hello", 3*time.Second); err != nil {
			t.Fatalf("bypass=%v: %v", bypass, err)
		}
		c.Close()
		srv.Close()

		route, err := topo.Exec(t.Context(), topo.Client, "ip", "route", "get", ServerAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		wantDev := "dev eth0"
		if bypass {
			wantDev = "dev byp0"
		}
		if !strings.Contains(route, wantDev) {
			t.Errorf("bypass=%v: client route to server %q, want %q", bypass, route, wantDev)
		}
		back, err := topo.Exec(t.Context(), topo.Server, "ip", "route", "get", ClientAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(back, "via "+FirewallDMZ.String()) {
			t.Errorf("bypass=%v: server route back %q, want via the firewall %s", bypass, back, FirewallDMZ)
		}
	}
}

// Close removes every namespace; a second Close is harmless.
func TestTopologyCloseRemovesNamespaces(t *testing.T) {
	needLab(t)
	topo, err := New(t.Context(), Options{Bypass: true})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{topo.Client, topo.Firewall, topo.Server}
	for _, ns := range names {
		if _, err := os.Stat(nsPath(ns)); err != nil {
			t.Fatalf("namespace %s missing after New: %v", ns, err)
		}
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, ns := range names {
		if _, err := os.Stat(nsPath(ns)); !os.IsNotExist(err) {
			t.Errorf("namespace %s still there after Close (err %v)", ns, err)
		}
	}
}

// Namespaces of a process that no longer exists are removed; those of live
// processes (this one) are not.
func TestRemoveStale(t *testing.T) {
	needLab(t)
	const prefix = "kslabstale"
	// PID 0x3fffff+1 is above the kernel's pid_max limit: never alive.
	dead := prefix + "-4194305-1-c"
	live := prefix + "-" + itoa(os.Getpid()) + "-1-c"
	for _, ns := range []string{dead, live} {
		if _, err := run(t.Context(), "ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = run(context.Background(), "ip", "netns", "del", ns) })
	}
	removed := RemoveStale(t.Context(), prefix)
	if len(removed) != 1 || removed[0] != dead {
		t.Fatalf("RemoveStale removed %q, want [%s]", removed, dead)
	}
	if _, err := os.Stat(nsPath(live)); err != nil {
		t.Errorf("live namespace removed: %v", err)
	}
}
