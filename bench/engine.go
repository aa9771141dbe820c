// Package bench measures keepstate: `keepstate bench engine` runs synthetic traffic
// through the real engine in memory and prints what it costs, next to the floor a
// plain Go map sets on the same machine in the same run.
package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"keepstate/config"
	"keepstate/firewall"
	"keepstate/packet"
)

// EngineOptions sizes the synthetic traffic.
type EngineOptions struct {
	Flows   int    // concurrent connections
	Packets int    // established-path packets, spread over the flows
	Seed    uint64 // for the interleaving; the same seed gives the same traffic
}

// EngineResult is what `keepstate bench engine --json` prints.
type EngineResult struct {
	EstablishedNsPerPacket float64 `json:"established_ns_per_packet"`
	NewConnectionNs        float64 `json:"new_connection_ns"`
	AllocsPerPacket        float64 `json:"allocs_per_packet"`
	BytesPerConnection     float64 `json:"bytes_per_connection"`
	MapLookupNs            float64 `json:"map_lookup_ns"`
	Flows                  int     `json:"flows"`
	Packets                int     `json:"packets"`

	// Context for reading the figures.
	TeardownNsPerPacket float64 `json:"teardown_ns_per_packet"`
	// EngineFixedBytes is what an empty engine holds (preallocated tombstones,
	// fragment cache, shard indexes); BytesPerConnection is the cost of each
	// connection on top of it.
	EngineFixedBytes int64 `json:"engine_fixed_bytes"`
	Dropped             uint64  `json:"dropped"` // must be 0: every synthetic packet is valid
	GoVersion           string  `json:"go_version"`
	GOMAXPROCS          int     `json:"gomaxprocs"`
}

// flow is one synthetic connection's endpoints and sequence state.
type flow struct {
	client, server netip.AddrPort
	next           [2]uint32 // next sequence number per direction: 0 client, 1 server
}

func flowAt(i int) flow {
	// Clients spread over 10.0.0.0/8, servers over 172.16.0.0/12, so that per-source
	// limits never bite and the hash sees realistic variety.
	c := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	s := netip.AddrFrom4([4]byte{172, 16 + byte(i>>20&0x0f), byte(i >> 7), byte(i*7 + 1)})
	return flow{
		client: netip.AddrPortFrom(c, uint16(1024+i%60000)),
		server: netip.AddrPortFrom(s, 443),
		next:   [2]uint32{uint32(i)*2654435761 + 1, uint32(i)*40503 + 7},
	}
}

// stream is many packets in one slab: raw IPv4, headers only. The IP total length
// still announces the payload, as in a capture cut by its snapshot length, so the
// tracker sees real segment lengths without the bench touching payload bytes.
type stream struct {
	buf  []byte
	offs []int32
}

func (s *stream) add(b []byte) {
	s.offs = append(s.offs, int32(len(s.buf)))
	s.buf = append(s.buf, b...)
}

func (s *stream) packet(i int) []byte {
	end := len(s.buf)
	if i+1 < len(s.offs) {
		end = int(s.offs[i+1])
	}
	return s.buf[s.offs[i]:end]
}

func (s *stream) len() int { return len(s.offs) }

// segment builds one TCP segment of flow f in direction dir (0 client to server)
// carrying n payload bytes, and advances the flow's sequence numbers.
func segment(scratch []byte, f *flow, dir int, flags packet.TCPFlags, n int, opts packet.TCPOptions) []byte {
	src, dst := f.client, f.server
	if dir == 1 {
		src, dst = dst, src
	}
	spec := packet.TCPSpec{
		Src: src, Dst: dst, Seq: f.next[dir], Flags: flags, Window: 65535, Options: opts,
	}
	if flags&packet.ACK != 0 {
		spec.Ack = f.next[1-dir]
	}
	b := packet.AppendTCP(scratch[:0], spec)
	if n > 0 {
		// Announce n payload bytes that the slab does not store.
		binary.BigEndian.PutUint16(b[2:4], uint16(len(b)+n))
	}
	adv := uint32(n)
	if flags&(packet.SYN|packet.FIN) != 0 {
		adv++
	}
	f.next[dir] += adv
	return b
}

var synOpts = packet.TCPOptions{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, SACKPermitted: true}

// RunEngine builds the traffic, runs it through a firewall.Engine with the built-in
// default configuration (every connection permitted, strict handshake), and measures.
func RunEngine(o EngineOptions) (EngineResult, error) {
	if o.Flows <= 0 || o.Packets <= 0 {
		return EngineResult{}, fmt.Errorf("flows and packets must be positive")
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	flows := make([]flow, o.Flows)
	for i := range flows {
		flows[i] = flowAt(i)
	}

	// Build every packet before measuring anything, so the heap figure is the table's.
	scratch := make([]byte, 0, 128)
	var syns, handshakes, data, teardown stream
	for i := range flows {
		syns.add(segment(scratch, &flows[i], 0, packet.SYN, 0, synOpts))
	}
	for i := range flows {
		handshakes.add(segment(scratch, &flows[i], 1, packet.SYN|packet.ACK, 0, synOpts))
		handshakes.add(segment(scratch, &flows[i], 0, packet.ACK, 0, packet.TCPOptions{}))
	}
	// Data both ways, flows interleaved at random as on a busy link: mostly full
	// segments from the server, requests and pure ACKs from the client.
	order := make([]int32, o.Packets)
	for i := range order {
		fi := rng.IntN(o.Flows)
		order[i] = int32(fi)
		dir, n, flags := 1, 1448, packet.ACK|packet.PSH
		switch r := rng.IntN(4); r {
		case 0:
			dir, n = 0, 200 // a request
		case 1:
			dir, n, flags = 0, 0, packet.ACK // a pure ACK
		}
		data.add(segment(scratch, &flows[fi], dir, flags, n, packet.TCPOptions{}))
	}
	for i := range flows {
		teardown.add(segment(scratch, &flows[i], 0, packet.FIN|packet.ACK, 0, packet.TCPOptions{}))
		teardown.add(segment(scratch, &flows[i], 1, packet.FIN|packet.ACK, 0, packet.TCPOptions{}))
		teardown.add(segment(scratch, &flows[i], 0, packet.ACK, 0, packet.TCPOptions{}))
	}

	cfg := config.Default()
	cfg.Settings.MaxConnections = o.Flows + o.Flows/4 + 1024
	cfg.Settings.ConnLimitPerSource = 0
	cfg.Settings.NewConnLimitPerSourcePerMinute = 0
	cfg.Settings.AdaptiveStartPercent = 0 // measure plain timeouts, not the adaptive scaling

	res := EngineResult{Flows: o.Flows, Packets: o.Packets, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	empty := heapInUse()
	eng, err := firewall.New(cfg, firewall.Options{})
	if err != nil {
		return res, err
	}
	before := heapInUse()
	res.EngineFixedBytes = int64(before) - int64(empty)
	var p packet.Parsed
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	run := func(s *stream) (ns float64) {
		start := time.Now()
		for i := 0; i < s.len(); i++ {
			d := eng.Decide(s.packet(i), packet.LinkRaw, -1, now, &p)
			if d.Action != firewall.Accept {
				res.Dropped++
			}
			now += 1000 // 1 µs of capture time per packet
		}
		return float64(time.Since(start).Nanoseconds()) / float64(s.len())
	}

	res.NewConnectionNs = run(&syns)
	run(&handshakes)
	after := heapInUse()
	// The packets built above must stay live until here, or the collector frees
	// them between the two readings and the difference means nothing.
	runtime.KeepAlive(&syns)
	runtime.KeepAlive(&handshakes)
	res.BytesPerConnection = float64(int64(after)-int64(before)) / float64(o.Flows)

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	res.EstablishedNsPerPacket = run(&data)
	runtime.ReadMemStats(&m1)
	res.AllocsPerPacket = float64(m1.Mallocs-m0.Mallocs) / float64(o.Packets)
	res.TeardownNsPerPacket = run(&teardown)
	if n := eng.Table().Len(); n != o.Flows {
		return res, fmt.Errorf("table holds %d connections after teardown, want %d in TIME_WAIT", n, o.Flows)
	}

	res.MapLookupNs = mapLookupNs(flows, order)
	runtime.KeepAlive(eng)
	return res, nil
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// connKey is the size of a connection's identity: two IPv6-capable addresses, two
// ports and a protocol, as a map key.
type connKey struct {
	src, dst   [16]byte
	sport, dpt uint16
	proto      uint8
}

var mapSink uint32

// mapLookupNs times lookups in a plain Go map holding one connection-sized key per
// flow, in the same random order as the established-path packets: the floor any
// connection table is measured against.
func mapLookupNs(flows []flow, order []int32) float64 {
	m := make(map[connKey]uint32, len(flows))
	for i, f := range flows {
		m[keyOf(f)] = uint32(i)
	}
	// The keys to look up are laid out in lookup order, as the engine's packets are:
	// both sides then pay for one random access into their table, not for gathering
	// their input.
	lookups := make([]connKey, len(order))
	for i, fi := range order {
		lookups[i] = keyOf(flows[fi])
	}
	var sum uint32
	start := time.Now()
	for i := range lookups {
		sum += m[lookups[i]]
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(len(lookups))
	mapSink = sum
	return ns
}

func keyOf(f flow) connKey {
	return connKey{src: f.client.Addr().As16(), dst: f.server.Addr().As16(), sport: f.client.Port(), dpt: f.server.Port(), proto: 6}
}
