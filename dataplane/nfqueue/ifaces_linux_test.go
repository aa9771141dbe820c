//go:build linux

package nfqueue

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"keepstate/firewall"
	"keepstate/policy"
)

// The ingress ifindex maps to the engine's interface through the device name,
// and a new ruleset is honoured at once.
func TestIfaceMap(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	defer unix.Close(fd)
	loIndex := uint32(1) // the loopback device is always index 1 in a namespace
	if name, ok := ifName(fd, loIndex); !ok || name != "lo" {
		t.Skipf("index 1 is %q, not lo", name)
	}
	cfg := labConfig()
	cfg.Policy.Interfaces = append(cfg.Policy.Interfaces, policy.Interface{ID: 3, Name: "Loop", Device: "lo", Group: policy.Other})
	eng, err := cfg.NewEngine(firewall.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := newIfaceMap(eng, fd)
	now := time.Now().UnixNano()
	tests := []struct {
		ifindex uint32
		want    int
	}{
		{0, -1},       // no ingress (locally generated)
		{loIndex, 2},  // lo -> "Loop", the third interface
		{loIndex, 2},  // cached
		{1 << 30, -1}, // no such device (beyond the cache)
		{4000, -1},    // no such device (cached as unknown)
	}
	for _, tc := range tests {
		if got := m.ingress(tc.ifindex, now); got != tc.want {
			t.Errorf("ingress(%d) = %d, want %d", tc.ifindex, got, tc.want)
		}
	}
	// A reload that moves lo to the first interface.
	cfg2 := labConfig()
	cfg2.Policy.Interfaces[0].Device = "lo"
	if _, err := cfg2.ApplyTo(eng); err != nil {
		t.Fatal(err)
	}
	if got := m.ingress(loIndex, now); got != 0 {
		t.Errorf("after Apply: ingress(lo) = %d, want 0", got)
	}
}

func TestAnswerRateLimit(t *testing.T) {
	w := &worker{tokens: answerBurst}
	now := int64(1e18)
	sent := 0
	for i := 0; i < 1000; i++ {
		if w.takeToken(now) {
			sent++
		}
	}
	if sent != answerBurst {
		t.Errorf("burst: %d answers, want %d", sent, answerBurst)
	}
	// 10 ms later: 10 more.
	now += int64(10 * time.Millisecond)
	sent = 0
	for i := 0; i < 1000; i++ {
		if w.takeToken(now) {
			sent++
		}
	}
	if sent != answersPerSecond/100 {
		t.Errorf("after 10ms: %d answers, want %d", sent, answersPerSecond/100)
	}
	// A long pause refills to the burst, no more.
	now += int64(time.Hour)
	sent = 0
	for i := 0; i < 1000; i++ {
		if w.takeToken(now) {
			sent++
		}
	}
	if sent != answerBurst {
		t.Errorf("after an hour: %d answers, want %d", sent, answerBurst)
	}
}
