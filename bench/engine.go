// Package bench measures keepstate: `keepstate bench engine` runs synthetic traffic
// through the real engine in memory and prints what it costs, next to the floor a
// plain Go map sets on the same machine in the same run.
package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/synth"
)

// EngineOptions sizes the synthetic traffic.
type EngineOptions struct {
	Flows   int    // concurrent connections
	Packets int    // established-path packets, spread over the flows
	Seed    uint64 // for the interleaving; the same seed gives the same traffic
	// NewConnSamples is how many new connections the new-connection figures are
	// taken from, opened on fresh engines of Flows connections each (default
	// 1 000 000): in wall time the median of the engines' rounds, in CPU time
	// their mean.
	NewConnSamples int
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

	// The same figures in CPU time of the measuring thread: what the work costs
	// when the machine is shared (wall time then also counts other processes).
	EstablishedCPUNsPerPacket float64 `json:"established_cpu_ns_per_packet"`
	NewConnectionCPUNs        float64 `json:"new_connection_cpu_ns"`
	NewConnectionSamples      int     `json:"new_connection_samples"` // connections opened to time it
	MapLookupCPUNs            float64 `json:"map_lookup_cpu_ns"`
	// MapLookupDependentNs is the map floor with each lookup waiting for the one
	// before (its key's index depends on the previous value): the latency of one
	// lookup rather than the throughput of many that overlap.
	MapLookupDependentNs float64 `json:"map_lookup_dependent_ns"`

	// The least any connection table does, timed in the same run: the tuple read
	// out of each packet's bytes, then the same map looked up (TupleLookupNs, in the
	// rounds of the established path) or, for each SYN, looked up and inserted into
	// an emptied map sized for the engine's limit (TupleInsertNs, alternating with
	// the new-connection rounds). They are not targets; they show how
	// much of the established and new-connection figures no table can avoid.
	TupleLookupNs    float64 `json:"tuple_lookup_ns"`
	TupleLookupCPUNs float64 `json:"tuple_lookup_cpu_ns"`
	TupleInsertNs    float64 `json:"tuple_insert_ns"`

	// Context for reading the figures.
	// EstablishedSingleNsPerPacket is the established path decided one packet at a
	// time (DecideInto) instead of in batches, in one second pass over the same
	// packets: what a cache miss costs when nothing overlaps it.
	EstablishedSingleNsPerPacket float64 `json:"established_single_ns_per_packet"`
	// Rounds: the wall figures of the established path, the map floor, the tuple
	// lookup and MapLookupDependentNs are medians over this many alternating
	// rounds; their CPU figures are totals over them.
	Rounds              int     `json:"rounds"`
	TeardownNsPerPacket float64 `json:"teardown_ns_per_packet"`
	// BytesPerConnection counts everything a connection costs: its entry, list
	// links, counters and its share of the index (sized up front for the limit).
	// EngineFixedBytes is what the engine holds whatever its connections: the
	// bounded tombstone memory, the fragment cache, shard structures.
	EngineFixedBytes int64  `json:"engine_fixed_bytes"`
	Dropped          uint64 `json:"dropped"` // must be 0: every synthetic packet is valid
	GoVersion        string `json:"go_version"`
	GOMAXPROCS       int    `json:"gomaxprocs"`
}

// stream is many packets in one slab, so the measured loop reads its input
// sequentially, as from a capture or a queue.
type stream struct {
	buf  []byte
	offs []int32
}

func (s *stream) add(b []byte, _ int) {
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

// RunEngine builds the traffic, runs it through a firewall.Engine with the built-in
// default configuration (every connection permitted, strict handshake), and measures.
func RunEngine(o EngineOptions) (EngineResult, error) {
	if o.Flows <= 0 || o.Packets <= 0 {
		return EngineResult{}, fmt.Errorf("flows and packets must be positive")
	}
	traffic := synth.NewTraffic(o.Flows, o.Packets, o.Seed)

	// Build every packet before measuring anything, so the heap figure is the table's.
	var syns, handshakes, data, teardown stream
	order := make([]int32, 0, o.Packets) // the flow of each data packet, for the map floor
	traffic.SYNs(syns.add)
	traffic.Handshakes(handshakes.add)
	traffic.Data(func(b []byte, fi int) {
		data.add(b, fi)
		order = append(order, int32(fi))
	})
	traffic.Teardowns(teardown.add)

	rules, st, err := engineSetup(o.Flows)
	if err != nil {
		return EngineResult{}, err
	}

	res := EngineResult{Flows: o.Flows, Packets: o.Packets, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	// The connection index is sized up front for the configured limit: measure it as
	// the difference between an empty engine sized for the limit and one sized for
	// almost nothing, and count it with the connections; fixed-size caches
	// (tombstones, fragments) are the engine's, not the connections'.
	small := st
	small.Conntrack.MaxConns = 1
	indexBytes := emptyEngineBytes(rules, st) - emptyEngineBytes(rules, small)
	// The feeder's batch is not the table's memory: it exists before the table's
	// first reading.
	batch := new(firewall.Batch)
	empty := heapInUse()
	eng, err := firewall.New(rules, st, firewall.Options{})
	if err != nil {
		return res, err
	}
	before := heapInUse()
	res.EngineFixedBytes = int64(before) - int64(empty) - indexBytes
	var p packet.Parsed
	var d firewall.Decision
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	// The thread's CPU time is only meaningful if the work stays on this thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// runRange times packets [from, to) of s in batches, as the feeders decide
	// packets, in wall time and in the thread's CPU time.
	runRange := func(s *stream, from, to int) (wallNs, cpuNs float64) {
		start, cpu0 := time.Now(), threadCPU()
		for i := from; i < to; i++ {
			batch.Add(s.packet(i), packet.LinkRaw, -1, now)
			now += 1000 // 1 µs of capture time per packet
			if batch.Full() || i == to-1 {
				eng.DecideBatch(batch)
				for j := range batch.Len() {
					if batch.Decisions[j].Action != firewall.Accept {
						res.Dropped++
					}
				}
				batch.Reset()
			}
		}
		n := float64(to - from)
		return float64(time.Since(start).Nanoseconds()) / n, float64(threadCPU()-cpu0) / n
	}
	// run times a whole phase.
	run := func(s *stream) (wallNs, cpuNs float64) { return runRange(s, 0, s.len()) }
	// runSingle times a phase one packet at a time (DecideInto), for comparison.
	runSingle := func(s *stream) (wallNs float64) {
		start := time.Now()
		for i := 0; i < s.len(); i++ {
			eng.DecideInto(s.packet(i), packet.LinkRaw, -1, now, &p, &d)
			if d.Action != firewall.Accept {
				res.Dropped++
			}
			now += 1000
		}
		return float64(time.Since(start).Nanoseconds()) / float64(s.len())
	}

	res.NewConnectionNs, res.NewConnectionCPUNs = run(&syns)
	run(&handshakes)
	after := heapInUse()
	// The packets built above must stay live until here, or the collector frees
	// them between the two readings and the difference means nothing.
	runtime.KeepAlive(&syns)
	runtime.KeepAlive(&handshakes)
	// All included: the entries, their lists and counters, and the index.
	res.BytesPerConnection = float64(int64(after)-int64(before)+indexBytes) / float64(o.Flows)

	// The established path and the map floor are timed in alternating rounds over
	// the same stretches of traffic, and each wall figure is the median of its
	// rounds: on a shared machine a neighbour's burst then spoils a round of each,
	// not one figure, and the ratio compares like with like. The CPU figures are
	// totals over the rounds instead: the thread's CPU clock ticks every few
	// milliseconds, as long as a round of map lookups lasts, so a round's CPU
	// time is too coarse to take a median of.
	fl := newMapFloor(traffic, order)
	rounds := max(1, min(engineRounds, o.Packets/minRoundPackets))
	var estWall, mapWall, tupleWall, depWall []float64
	var estCPU, mapCPU, tupleCPU float64 // ns, summed over the rounds
	var allocs uint64
	for r := range rounds {
		from, to := r*o.Packets/rounds, (r+1)*o.Packets/rounds
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		n := float64(to - from)
		w, c := runRange(&data, from, to)
		runtime.ReadMemStats(&m1)
		allocs += m1.Mallocs - m0.Mallocs
		estWall, estCPU = append(estWall, w), estCPU+c*n
		// The map loops go over the same keys in the same order, and the first
		// leaves the caches warmer for the next: which one goes first rotates.
		for step := range 3 {
			switch (r + step) % 3 {
			case 0:
				w, c := fl.time(from, to)
				mapWall, mapCPU = append(mapWall, w), mapCPU+c*n
			case 1:
				w, c, err := fl.timeTuples(&data, from, to)
				if err != nil {
					return res, err
				}
				tupleWall, tupleCPU = append(tupleWall, w), tupleCPU+c*n
			case 2:
				depWall = append(depWall, fl.timeDependent(from, to))
			}
		}
	}
	packets := float64(o.Packets)
	res.MapLookupDependentNs = median(depWall)
	res.EstablishedNsPerPacket, res.EstablishedCPUNsPerPacket = median(estWall), estCPU/packets
	res.MapLookupNs, res.MapLookupCPUNs = median(mapWall), mapCPU/packets
	res.TupleLookupNs, res.TupleLookupCPUNs = median(tupleWall), tupleCPU/packets
	res.Rounds = rounds
	// ReadMemStats allocates nothing itself; any allocation here is the engine's.
	res.AllocsPerPacket = float64(allocs) / packets
	// A second pass over the same packets, which the table has seen: for
	// comparison only.
	res.EstablishedSingleNsPerPacket = runSingle(&data)
	res.TeardownNsPerPacket, _ = run(&teardown)
	if n := eng.Table().Len(); n != o.Flows {
		return res, fmt.Errorf("table holds %d connections after teardown, want %d in TIME_WAIT", n, o.Flows)
	}

	// One pass of SYNs over a small table is too short to time well (10 000 SYNs take
	// a few milliseconds, about a tick of the thread's CPU clock), so new
	// connections are timed again on fresh engines of the same size until
	// NewConnSamples were opened (the rounds are capped for tables of a few dozen
	// connections).
	samples := o.NewConnSamples
	if samples <= 0 {
		samples = newConnSamples
	}
	extra := min(maxNewConnRounds-1, (samples+o.Flows-1)/o.Flows-1)
	// The wall figures are medians of the rounds, which alternate with the map
	// floor for inserts, as the established path's do; the CPU figure is the
	// mean, since the thread's CPU clock ticks every few milliseconds, about as
	// long as a round of 10 000 SYNs lasts.
	floorMap := make(map[connKey]uint32, st.Conntrack.MaxConns)
	newWall, cpu := []float64{res.NewConnectionNs}, res.NewConnectionCPUNs
	var insertWall []float64
	for r := range extra + 1 {
		if r > 0 {
			eng, err = firewall.New(rules, st, firewall.Options{})
			if err != nil {
				return res, err
			}
			w, c := run(&syns)
			newWall, cpu = append(newWall, w), cpu+c
		}
		w, err := timeTupleInserts(&syns, floorMap)
		if err != nil {
			return res, err
		}
		insertWall = append(insertWall, w)
	}
	res.NewConnectionNs, res.NewConnectionCPUNs = median(newWall), cpu/float64(extra+1)
	res.TupleInsertNs = median(insertWall)
	res.NewConnectionSamples = o.Flows * (extra + 1)
	runtime.KeepAlive(&syns)
	return res, nil
}

// The established path is timed in engineRounds rounds (fewer when there are not
// minRoundPackets packets for each), alternating with the map floor.
const (
	engineRounds    = 9
	minRoundPackets = 200_000
)

// newConnSamples is how many new connections the new-connection figure is taken
// from by default; maxNewConnRounds bounds the fresh engines built to get there.
const (
	newConnSamples   = 1_000_000
	maxNewConnRounds = 10_000
)

// engineSetup is what the engine is measured with: the built-in policy (every
// connection permitted) and default settings, with a limit sized for flows
// connections and a little headroom (the index is sized for the limit, and its
// share per connection is what a firewall sized for its load pays), no
// per-source limits and no adaptive scaling.
func engineSetup(flows int) (*policy.Ruleset, firewall.Settings, error) {
	m := policy.PermitAll()
	rules, err := policy.Compile(&m)
	if err != nil {
		return nil, firewall.Settings{}, err
	}
	st := firewall.DefaultSettings()
	st.Conntrack.MaxConns = flows + 1024
	st.Conntrack.PerSourceConns, st.Conntrack.PerSourceRate = 0, 0
	st.Conntrack.AdaptiveStart, st.Conntrack.AdaptiveEnd = 0, 0 // measure plain timeouts, not the adaptive scaling
	return rules, st, nil
}

// emptyEngineBytes is the heap an engine with rules and settings st holds before
// any connection.
func emptyEngineBytes(rules *policy.Ruleset, st firewall.Settings) int64 {
	before := heapInUse()
	eng, err := firewall.New(rules, st, firewall.Options{})
	if err != nil {
		return 0
	}
	after := heapInUse()
	runtime.KeepAlive(eng)
	return int64(after) - int64(before)
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

// mapFloor is the floor any connection table is measured against: a plain Go map
// holding one connection-sized key per flow, looked up in the same random order
// as the established-path packets.
type mapFloor struct {
	m       map[connKey]uint32
	lookups []connKey
	sum     uint32
	zero    uint32 // always 0: see timeDependent
}

func newMapFloor(t *synth.Traffic, order []int32) *mapFloor {
	f := &mapFloor{m: make(map[connKey]uint32, t.Flows)}
	for i := range t.Flows {
		f.m[keyOf(t, i)] = uint32(i)
	}
	// The keys to look up are laid out in lookup order, as the engine's packets are:
	// both sides then pay for one random access into their table, not for gathering
	// their input.
	f.lookups = make([]connKey, len(order))
	for i, fi := range order {
		f.lookups[i] = keyOf(t, int(fi))
	}
	return f
}

// time times lookups [from, to).
func (f *mapFloor) time(from, to int) (wallNs, cpuNs float64) {
	var sum uint32
	start, cpu0 := time.Now(), threadCPU()
	for i := from; i < to; i++ {
		sum += f.m[f.lookups[i]]
	}
	n := float64(to - from)
	wall, cpu := float64(time.Since(start).Nanoseconds())/n, float64(threadCPU()-cpu0)/n
	f.sum += sum // the lookups must not be optimised away
	return wall, cpu
}

// timeDependent times lookups [from, to) one at a time: each key's index is
// xored with the previous value masked by f.zero, which is always 0 but unknown
// to the compiler and the CPU, so no lookup starts before the last has finished.
func (f *mapFloor) timeDependent(from, to int) (wallNs float64) {
	var v uint32
	start := time.Now()
	for i := from; i < to; i++ {
		v = f.m[f.lookups[i^int(v&f.zero)]]
	}
	wall := float64(time.Since(start).Nanoseconds()) / float64(to-from)
	f.sum += v
	return wall
}

// timeTuples times lookups [from, to) again with each key read out of its packet
// in s, as any connection table must before it can look anything up.
func (f *mapFloor) timeTuples(s *stream, from, to int) (wallNs, cpuNs float64, err error) {
	var sum, missed uint32
	start, cpu0 := time.Now(), threadCPU()
	for i := from; i < to; i++ {
		k, ok := tupleOf(s.packet(i))
		v, found := f.m[k]
		if !ok || !found {
			missed++
		}
		sum += v
	}
	n := float64(to - from)
	wall, cpu := float64(time.Since(start).Nanoseconds())/n, float64(threadCPU()-cpu0)/n
	f.sum += sum
	if missed > 0 {
		return wall, cpu, fmt.Errorf("tuple floor: %d of %d packets not found by their tuple", missed, to-from)
	}
	return wall, cpu, nil
}

// timeTupleInserts times inserting the tuple of every SYN in syns into m, which
// it empties first, and returns the wall ns per insert. m is made once, sized for
// the engine's limit as the engine's index is: emptied rather than made afresh
// each round, it leaves the collector nothing to do while the rounds are timed.
func timeTupleInserts(syns *stream, m map[connKey]uint32) (float64, error) {
	clear(m)
	start := time.Now()
	for i := range syns.len() {
		k, ok := tupleOf(syns.packet(i))
		if !ok {
			return 0, fmt.Errorf("tuple floor: SYN %d has no tuple", i)
		}
		if _, dup := m[k]; !dup { // a table looks before it inserts
			m[k] = uint32(i)
		}
	}
	wall := float64(time.Since(start).Nanoseconds()) / float64(syns.len())
	if len(m) != syns.len() {
		return 0, fmt.Errorf("tuple floor: %d SYNs gave %d tuples", syns.len(), len(m))
	}
	return wall, nil
}

// tupleOf reads the connection key out of a raw IPv4 or IPv6 TCP/UDP packet with
// the fewest checks that keep it in bounds: the least a decoder does. IPv4
// addresses are IPv4-mapped, as keyOf stores them. The endpoints are ordered
// (see canonical) so that a packet and its reply give the same key.
func tupleOf(b []byte) (k connKey, ok bool) {
	if len(b) < 1 {
		return k, false
	}
	var l4 int
	var src, dst [2]uint64 // the addresses as big-endian halves, to order them
	switch b[0] >> 4 {
	case 4:
		l4 = int(b[0]&0x0f) * 4
		if l4 < 20 || len(b) < l4+4 {
			return k, false
		}
		src[1] = 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[12:16]))
		dst[1] = 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[16:20]))
		k.proto = b[9]
	case 6:
		l4 = 40
		if len(b) < l4+4 {
			return k, false
		}
		src = [2]uint64{binary.BigEndian.Uint64(b[8:16]), binary.BigEndian.Uint64(b[16:24])}
		dst = [2]uint64{binary.BigEndian.Uint64(b[24:32]), binary.BigEndian.Uint64(b[32:40])}
		k.proto = b[6]
	default:
		return k, false
	}
	sport, dport := binary.BigEndian.Uint16(b[l4:]), binary.BigEndian.Uint16(b[l4+2:])
	if src[0] > dst[0] || src[0] == dst[0] && (src[1] > dst[1] || src[1] == dst[1] && sport > dport) {
		src, dst, sport, dport = dst, src, dport, sport
	}
	binary.BigEndian.PutUint64(k.src[0:8], src[0])
	binary.BigEndian.PutUint64(k.src[8:16], src[1])
	binary.BigEndian.PutUint64(k.dst[0:8], dst[0])
	binary.BigEndian.PutUint64(k.dst[8:16], dst[1])
	k.sport, k.dpt = sport, dport
	return k, true
}

// canonical orders the key's endpoints, lower address (then port) first, as
// tupleOf does: a connection table must find one entry from both directions, and
// this is the cheapest way to do it with a map.
func (k connKey) canonical() connKey {
	if c := bytes.Compare(k.src[:], k.dst[:]); c > 0 || c == 0 && k.sport > k.dpt {
		k.src, k.dst, k.sport, k.dpt = k.dst, k.src, k.dpt, k.sport
	}
	return k
}

func keyOf(t *synth.Traffic, i int) connKey {
	c, s := t.Client(i), t.Server(i)
	return connKey{src: c.Addr().As16(), dst: s.Addr().As16(), sport: c.Port(), dpt: s.Port(), proto: 6}.canonical()
}

// median of v (the mean of the middle two for an even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
