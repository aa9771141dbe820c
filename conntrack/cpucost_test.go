package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"keepstate/packet"
)

// cpuNS returns the process's user+system CPU time in ns. On a shared machine the
// benchmarks' wall-clock ns/op measure the load as much as the code; CPU time per
// operation is steadier (caches are still shared, so it is not exact either).
func cpuNS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestCPUCosts prints CPU ns per operation for the per-packet paths next to a plain
// Go map lookup with the same keys, three rounds interleaved. Run with
// KEEPSTATE_CPUCOST=1 go test -run TestCPUCosts -v ./conntrack
func TestCPUCosts(t *testing.T) {
	if os.Getenv("KEEPSTATE_CPUCOST") == "" {
		t.Skip("set KEEPSTATE_CPUCOST=1")
	}
	for _, n := range costSizes() {
		tab := New(Config{Strict: true, MaxConns: -1})
		establish(t, tab, n)
		m := make(map[Key]uint32, n)
		var p packet.Parsed
		for i := range n {
			fillSeg(&p, i, Original, A, c1, s1)
			m[keyOf(&p)] = uint32(i)
		}
		// One reused Parsed, as in the engine, filled from a small array of random
		// connection numbers; the fill alone is measured and subtracted.
		const pool = 1 << 14
		idx := make([]int, pool)
		for j := range idx {
			idx[j] = rand.IntN(n)
		}
		raws := make([][]byte, 2048)
		for j := range raws {
			raws[j] = packet.AppendTCP(nil, packet.TCPSpec{
				Src: netip.AddrPortFrom(clientOf(idx[j]), 40000), Dst: netip.AddrPortFrom(srvAddr, 443),
				Seq: c1, Ack: s1, Flags: A, Window: 65535, TTL: 64})
		}
		const iters = 2_000_000
		measure := func(f func(i int)) float64 {
			start := cpuNS()
			for i := range iters {
				f(i)
			}
			return float64(cpuNS()-start) / iters
		}
		var sum uint32
		var q packet.Parsed
		for round := range 3 {
			fillNS := measure(func(i int) { fillSeg(&q, idx[i&(pool-1)], Original, A, c1, s1) })
			mapNS := measure(func(i int) {
				fillSeg(&q, idx[i&(pool-1)], Original, A, c1, s1)
				sum += m[keyOf(&q)]
			}) - fillNS
			trackNS := measure(func(i int) {
				fillSeg(&q, idx[i&(pool-1)], Original, A, c1, s1)
				tab.Track(&q, t0)
			}) - fillNS
			decodeNS := measure(func(i int) { _ = q.Decode(raws[i&2047], packet.LinkRaw) })
			fullNS := trackNS + decodeNS
			t.Logf("n=%d round %d: map %.0f ns, Track %.0f ns (%.2fx), Decode+Track %.0f ns (%.2fx)",
				n, round, mapNS, trackNS, trackNS/mapNS, fullNS, fullNS/mapNS)
		}
		// A new connection: Track (miss) + Create, into a table that already holds
		// n; the new connections are expired again so that n stays put.
		var nq packet.Parsed
		newNS := measure(func(i int) {
			fillSeg(&nq, n+i, Original, S, cliISN, 0)
			nq.SrcPort = 1
			now := t0 + int64(i)
			tab.Track(&nq, now)
			tab.Create(&nq, now, Meta{Rule: 1})
			if i&1023 == 1023 {
				tab.Expire(now + int64(DefaultTimeouts().TCPSynSent) - 1024) // the SYN_SENT ones
			}
		})
		fillNS := measure(func(i int) { fillSeg(&q, idx[i&(pool-1)], Original, A, c1, s1) })
		mapNS := measure(func(i int) {
			fillSeg(&q, idx[i&(pool-1)], Original, A, c1, s1)
			sum += m[keyOf(&q)]
		}) - fillNS
		t.Logf("n=%d: new connection %.0f ns (%.2fx map %.0f ns)", n, newNS, newNS/mapNS, mapNS)
	}
}

func costSizes() []int {
	switch os.Getenv("KEEPSTATE_CPUCOST") {
	case "10k":
		return []int{10_000}
	case "small":
		return []int{64, 10_000}
	}
	return sizes()
}
