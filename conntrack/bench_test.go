package conntrack

import (
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"keepstate/packet"
)

// clientOf is the i-th of many distinct clients: 16M addresses x 1 port.
func clientOf(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// fillSeg makes p a segment of connection i in direction dir, rebuilt in place to
// keep the benchmark's own memory out of the measurement.
func fillSeg(p *packet.Parsed, i int, dir Dir, flags packet.TCPFlags, seq, ack uint32) {
	*p = packet.Parsed{IPVersion: 4, Proto: packet.ProtoTCP, TCPFlags: flags, Seq: seq, Ack: ack,
		Window: 65535, IPLen: 40, Src: clientOf(i), Dst: srvAddr, SrcPort: 40000, DstPort: 443}
	if dir == Reply {
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
}

// establish opens n connections in tab through the full handshake.
func establish(tb testing.TB, tab *Table, n int) {
	var p packet.Parsed
	for i := range n {
		fillSeg(&p, i, Original, S, cliISN, 0)
		if r := tab.Create(&p, t0, Meta{Rule: 1}); r.Verdict != Accept {
			tb.Fatalf("conn %d: Create %+v", i, r)
		}
		fillSeg(&p, i, Reply, SA, srvISN, cliISN+1)
		tab.Track(&p, t0)
		fillSeg(&p, i, Original, A, c1, s1)
		if r := tab.Track(&p, t0); r.State != StateEstablished {
			tb.Fatalf("conn %d: %+v", i, r)
		}
	}
}

func sizes() []int { return []int{10_000, 1_000_000} }

func BenchmarkTrackEstablished(b *testing.B) {
	for _, n := range sizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := New(Config{Strict: true, MaxConns: -1})
			establish(b, tab, n)
			pkts := make([]packet.Parsed, 4096)
			for j := range pkts {
				fillSeg(&pkts[j], rand.IntN(n), Original, A, c1, s1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if r := tab.Track(&pkts[i&4095], t0); r.Verdict != Accept {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkDecodeTrack is the whole per-packet path: decode raw bytes, then Track.
func BenchmarkDecodeTrack(b *testing.B) {
	for _, n := range sizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := New(Config{Strict: true, MaxConns: -1})
			establish(b, tab, n)
			raws := make([][]byte, 4096)
			for j := range raws {
				c := rand.IntN(n)
				raws[j] = packet.AppendTCP(nil, packet.TCPSpec{
					Src: netip.AddrPortFrom(clientOf(c), 40000), Dst: netip.AddrPortFrom(srvAddr, 443),
					Seq: c1, Ack: s1, Flags: A, Window: 65535, TTL: 64})
			}
			var p packet.Parsed
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := p.Decode(raws[i&4095], packet.LinkRaw); err != nil {
					b.Fatal(err)
				}
				if r := tab.Track(&p, t0); r.Verdict != Accept {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkMapLookup is the yardstick of the issue: a plain Go map lookup with the
// same keys and access pattern.
func BenchmarkMapLookup(b *testing.B) {
	for _, n := range sizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			m := make(map[Key]uint32)
			var p packet.Parsed
			for i := range n {
				fillSeg(&p, i, Original, A, c1, s1)
				m[keyOf(&p)] = uint32(i)
			}
			pkts := make([]packet.Parsed, 4096)
			for j := range pkts {
				fillSeg(&pkts[j], rand.IntN(n), Original, A, c1, s1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var sum uint32
			for i := 0; b.Loop(); i++ {
				sum += m[keyOf(&pkts[i&4095])]
			}
			runtime.KeepAlive(sum)
		})
	}
}

// BenchmarkNewConnection is a SYN for an unknown tuple: Track (miss) and Create.
func BenchmarkNewConnection(b *testing.B) {
	tab := New(Config{Strict: true, MaxConns: -1})
	var p packet.Parsed
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		fillSeg(&p, i, Original, S, cliISN, 0)
		p.SrcPort = uint16(i >> 24)
		if r := tab.Track(&p, t0); r.Verdict != NewConn {
			b.Fatal(r)
		}
		if r := tab.Create(&p, t0, Meta{Rule: 1}); r.Verdict != Accept {
			b.Fatal(r)
		}
	}
}

// BenchmarkCreate is Create alone, in a table kept at 100k connections by expiry.
func BenchmarkCreate(b *testing.B) {
	tab := New(Config{Strict: true, MaxConns: -1})
	var p packet.Parsed
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		fillSeg(&p, i, Original, S, cliISN, 0)
		p.SrcPort = uint16(i >> 24)
		now := t0 + int64(i)*1000
		if r := tab.Create(&p, now, Meta{Rule: 1}); r.Verdict != Accept {
			b.Fatal(r)
		}
		if i%1000 == 999 {
			tab.Expire(now - 120e9 + 100_000*1000)
		}
	}
}

// BenchmarkSYNFloodFullTable is a flood of SYNs from new sources against a table
// at its limit: of established connections (every SYN refused as table_full), or
// of half-open ones (every SYN evicts the oldest it finds).
func BenchmarkSYNFloodFullTable(b *testing.B) {
	const n = 100_000
	for _, full := range []string{"established", "half-open"} {
		b.Run(full, func(b *testing.B) {
			tab := New(Config{Strict: true, MaxConns: n})
			var p packet.Parsed
			if full == "established" {
				establish(b, tab, n)
			} else {
				for i := range n {
					fillSeg(&p, i, Original, S, cliISN, 0)
					tab.Create(&p, t0+int64(i), Meta{Rule: 1})
				}
			}
			want := Accept
			if full == "established" {
				want = Drop
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				fillSeg(&p, n+i, Original, S, cliISN, 0)
				if r := tab.Create(&p, t0+int64(n+i), Meta{Rule: 1}); r.Verdict != want {
					b.Fatal(r)
				}
			}
		})
	}
}

func BenchmarkTrackParallel(b *testing.B) {
	tab := New(Config{Strict: true, MaxConns: -1})
	const n = 100_000
	establish(b, tab, n)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var p packet.Parsed
		i := rand.IntN(n)
		for pb.Next() {
			fillSeg(&p, i%n, Original, A, c1, s1)
			tab.Track(&p, t0)
			i += 7919
		}
	})
}

func TestTrackDoesNotAllocate(t *testing.T) {
	tab := New(Config{Strict: true, OnEnd: func(ConnInfo, EndCause) {}})
	establish(t, tab, 100)
	var tcp packet.Parsed
	fillSeg(&tcp, 42, Original, PA, c1, s1)
	u := udp(cliAddr, srvAddr, 1, 2, 10)
	tab.Create(u, t0, Meta{Rule: 3})
	ub := udp(srvAddr, cliAddr, 2, 1, 10)
	miss := seg(Original, A, 1, 2, 0)
	for name, p := range map[string]*packet.Parsed{"tcp": &tcp, "udp": u, "udp reply": ub, "miss": miss} {
		allocs := testing.AllocsPerRun(1000, func() { tab.Track(p, t0) })
		if allocs != 0 {
			t.Errorf("Track(%s) allocates %.1f times per call", name, allocs)
		}
	}
}

// TestMemoryPerConnection measures the heap cost of 1M connections, everything
// included (slabs, index, lists, interned metadata).
func TestMemoryPerConnection(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1M connections: not with -short or -race")
	}
	const n = 1_000_000
	for _, tc := range []struct{ v6, perSource bool }{{false, false}, {true, false}, {false, true}} {
		v6 := tc.v6
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cfg := Config{Strict: true, MaxConns: -1}
		if tc.perSource {
			// Every connection from its own source: the per-source map's worst case,
			// reported but outside the budget (the map holds active sources only).
			cfg.PerSourceConns, cfg.PerSourceRate = 600, 600
		}
		tab := New(cfg)
		var p packet.Parsed
		for i := range n {
			fillSeg(&p, i, Original, S, cliISN, 0)
			if v6 {
				a := cli6.As16()
				a[12], a[13], a[14], a[15] = 0, byte(i>>16), byte(i>>8), byte(i)
				p.Src, p.Dst = netip.AddrFrom16(a), srv6
			}
			if r := tab.Create(&p, t0, Meta{Rule: uint32(i % 100)}); r.Verdict != Accept {
				t.Fatal(r)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(after.HeapAlloc-before.HeapAlloc) / n
		t.Logf("ipv6=%v per-source limits=%v: %d connections, %.1f bytes per connection (heap)", v6, tc.perSource, tab.Len(), per)
		if per > 128 && !tc.perSource {
			t.Errorf("%.1f bytes per connection, budget 128", per)
		}
		runtime.KeepAlive(tab)
	}
}

func TestConcurrentUse(t *testing.T) {
	var ends sync.Map
	tab := New(Config{Strict: true, MaxConns: 3000, Shards: 4, PerSourceConns: 1000,
		OnEnd: func(ci ConnInfo, c EndCause) { ends.Store(ci.ID, c) }})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var p packet.Parsed
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 3000 {
				c := rng.IntN(4000)
				now := t0 + int64(i)*int64(1e7)
				fillSeg(&p, c, Original, S, cliISN, 0)
				if r := tab.Track(&p, now); r.Verdict == NewConn {
					tab.Create(&p, now, Meta{Rule: uint32(g)})
				}
				fillSeg(&p, c, Reply, SA, srvISN, cliISN+1)
				tab.Track(&p, now)
				fillSeg(&p, c, Original, A, c1, s1)
				tab.Track(&p, now)
				switch i % 500 {
				case 100:
					tab.Expire(now)
				case 200:
					tab.Range(func(ConnInfo) bool { return true })
				case 300:
					tab.CloseIf(func(ci *ConnInfo) bool { return ci.ID%7 == 0 }, EndFlushed)
				case 400:
					tab.Stats()
				}
			}
		})
	}
	wg.Wait()
	n := 0
	tab.Range(func(ConnInfo) bool { n++; return true })
	if n != tab.Len() || n > 3000 {
		t.Fatalf("Range saw %d, Len %d", n, tab.Len())
	}
}

// BenchmarkSnapshotWrite writes a snapshot of a table of n established
// connections to a file and syncs it, as the daemon's periodic checkpoint does
// (bytes/op is the file's size).
func BenchmarkSnapshotWrite(b *testing.B) {
	for _, n := range sizes() {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := New(Config{Strict: true, MaxConns: -1})
			establish(b, tab, n)
			path := b.TempDir() + "/snap"
			var size int64
			for b.Loop() {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := tab.WriteSnapshot(f, t0); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				fi, _ := f.Stat()
				size = fi.Size()
				f.Close()
			}
			b.ReportMetric(float64(size), "bytes/snapshot")
			b.ReportMetric(float64(size)/float64(n), "bytes/conn")
		})
	}
}

// BenchmarkTrackDuringSnapshot is the stall a snapshot causes on the packet
// path: the latency of Track on a table of 1 M established connections, one
// packet after another, while another goroutine writes snapshots without pause
// (to io.Discard: the CPU and lock cost, not the disk's), against the same with
// no snapshot. It reports the latency percentiles and the longest packet.
func BenchmarkTrackDuringSnapshot(b *testing.B) {
	const n = 1_000_000
	tab := New(Config{Strict: true, MaxConns: -1})
	establish(b, tab, n)
	pkts := make([]packet.Parsed, 4096)
	for j := range pkts {
		fillSeg(&pkts[j], rand.IntN(n), Original, A, c1, s1)
	}
	for _, tc := range []struct {
		name string
		hold int
	}{{"idle", 0}, {"snapshot", snapshotHold}, {"snapshot-whole-shard", 1 << 30}} {
		b.Run(tc.name, func(b *testing.B) {
			saved := snapshotHold
			snapshotHold = max(tc.hold, 1)
			defer func() { snapshotHold = saved }()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			snaps := 0
			if tc.hold > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := tab.WriteSnapshot(io.Discard, t0); err != nil {
							panic(err)
						}
						snaps++
					}
				}()
			}
			lat := make([]time.Duration, 0, 1<<20)
			i := 0
			for b.Loop() {
				start := time.Now()
				tab.Track(&pkts[i&4095], t0)
				lat = append(lat, time.Since(start))
				i++
			}
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) }
			b.ReportMetric(pct(0.5), "p50-ns")
			b.ReportMetric(pct(0.99), "p99-ns")
			b.ReportMetric(pct(0.999), "p99.9-ns")
			b.ReportMetric(pct(0.99999), "p99.999-ns")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
			b.ReportMetric(float64(snaps), "snapshots")
		})
	}
}
