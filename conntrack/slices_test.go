package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// Class lists are ordered by coarse time slices (a 16th of the timeout, at most
// about 17 s). Expiry must still be exact to the nanosecond: after
// Expire(now), a connection is in the table if and only if it was seen less than
// its timeout ago, also after the timeout was shortened (the slices then stay as
// coarse as they were).
func TestExpireExactWithCoarseSlices(t *testing.T) {
	const flows = 200
	timeout := 3 * time.Hour
	tab := New(Config{Timeouts: Timeouts{UDPUnreplied: timeout}, Shards: 4})
	if sh := tab.cfg.Load().shift[clsUDPUnreplied]; sh <= minSliceShift {
		t.Fatalf("slice shift %d for a 3 h timeout: the test needs slices longer than the minimum", sh)
	}
	src := func(f int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(f >> 8), byte(f)}) }
	dst := netip.MustParseAddr("192.0.2.53")

	rng := rand.New(rand.NewPCG(1, 2))
	lastSeen := make([]int64, flows)
	alive := make([]bool, flows)
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).UnixNano()
	for step := range 20000 {
		if step == 10000 {
			timeout = 50 * time.Minute
			shift := tab.cfg.Load().shift[clsUDPUnreplied]
			tab.Reconfigure(Config{Timeouts: Timeouts{UDPUnreplied: timeout}, Shards: 4})
			if got := tab.cfg.Load().shift[clsUDPUnreplied]; got != shift {
				t.Fatalf("a shorter timeout changed the slice shift from %d to %d: slices may only grow", shift, got)
			}
		}
		now += rng.Int64N(int64(120 * time.Second))
		f := rng.IntN(flows)
		p := udp(src(f), dst, 5000, 53, 10)
		r := tab.Track(p, now)
		if r.Verdict == NewConn {
			r = tab.Create(p, now, Meta{})
		}
		if r.Verdict != Accept {
			t.Fatalf("step %d: %v %v", step, r.Verdict, r.Reason)
		}
		lastSeen[f], alive[f] = now, true

		if step%7 != 0 {
			continue
		}
		tab.Expire(now)
		live := sourcesIn(tab)
		for g := range flows {
			want := alive[g] && now-lastSeen[g] < int64(timeout)
			if live[src(g)] != want {
				t.Fatalf("step %d: flow %d idle %v (timeout %v): in table %v, want %v",
					step, g, time.Duration(now-lastSeen[g]), timeout, live[src(g)], want)
			}
			alive[g] = want
		}
	}
	checkInvariants(t, tab)
}

func TestSliceShiftFor(t *testing.T) {
	for _, c := range []struct {
		timeout time.Duration
		want    uint8
	}{
		{10 * time.Second, minSliceShift},
		{30 * time.Second, minSliceShift},            // a 16th is 1.9 s: 2^30 ns (1.07 s) is the largest power of two below
		{120 * time.Second, 32},                      // 7.5 s: 2^32 ns (4.3 s)
		{300 * time.Second, maxSliceShift},           // 18.75 s: 2^34 ns (17.2 s)
		{2*time.Hour + 4*time.Minute, maxSliceShift}, // capped
		{5 * 24 * time.Hour, maxSliceShift},
	} {
		got := sliceShiftFor(int64(c.timeout))
		if got != c.want {
			t.Errorf("%v: shift %d, want %d", c.timeout, got, c.want)
		}
		if slice := time.Duration(1) << got; got > minSliceShift && slice > c.timeout/slicesPerTimeout {
			t.Errorf("%v: slice %v longer than a %dth of the timeout", c.timeout, slice, slicesPerTimeout)
		}
	}
}
