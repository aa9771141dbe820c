package bench

import (
	"encoding/json"
	"net/netip"
	"testing"

	"keepstate/packet"
)

// A small run: every synthetic packet is accepted, nothing allocates per packet,
// the memory figure is that of a connection, every figure is there, and the JSON
// carries the keys the issue names.
func TestRunEngine(t *testing.T) {
	r, err := RunEngine(EngineOptions{Flows: 2000, Packets: 20000, Seed: 1, NewConnSamples: 30000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Dropped != 0 {
		t.Errorf("%d synthetic packets dropped", r.Dropped)
	}
	if r.AllocsPerPacket != 0 {
		t.Errorf("%v allocations per packet", r.AllocsPerPacket)
	}
	// An entry is 112 bytes; with its index share and slab slack a connection
	// costs somewhat more, and nowhere near a kilobyte.
	if r.BytesPerConnection < 112 || r.BytesPerConnection > 256 {
		t.Errorf("%.1f bytes per connection", r.BytesPerConnection)
	}
	if r.EstablishedNsPerPacket <= 0 || r.NewConnectionNs <= 0 || r.MapLookupNs <= 0 || r.NewConnectionSamples != 30000 ||
		r.TupleLookupNs <= 0 || r.TupleInsertNs <= 0 || r.MapLookupDependentNs <= 0 ||
		r.EstablishedSingleNsPerPacket <= 0 || r.TeardownNsPerPacket <= 0 {
		t.Errorf("timings missing: %+v", r)
	}
	if _, err := RunEngine(EngineOptions{Flows: 0, Packets: 1}); err == nil {
		t.Error("zero flows accepted")
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"established_ns_per_packet", "new_connection_ns", "allocs_per_packet", "bytes_per_connection", "map_lookup_ns", "flows", "packets"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

// Enough packets for two rounds: the rounds split the packets, and the figures
// come out of them. The allocation count is the process's, over seconds under
// the race detector, so it is checked against one per packet rather than zero:
// the runtime's own allocations show there (TestRunEngine checks zero).
func TestRunEngineRounds(t *testing.T) {
	r, err := RunEngine(EngineOptions{Flows: 2000, Packets: 2 * minRoundPackets, Seed: 1, NewConnSamples: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rounds != 2 || r.Dropped != 0 || r.AllocsPerPacket >= 1e-3 {
		t.Errorf("%d rounds, %d dropped, %v allocations per packet; want 2, 0, none per packet", r.Rounds, r.Dropped, r.AllocsPerPacket)
	}
	if r.EstablishedNsPerPacket <= 0 || r.MapLookupNs <= 0 || r.TupleLookupNs <= 0 || r.MapLookupDependentNs <= 0 ||
		r.EstablishedCPUNsPerPacket <= 0 {
		t.Errorf("timings missing: %+v", r)
	}
}

// tupleOf must give the map floor's key for both directions of a flow, for IPv4
// and IPv6, and refuse what it cannot read.
func TestTupleOf(t *testing.T) {
	for _, tc := range []struct{ client, server string }{
		{"10.0.0.1:40000", "192.0.2.1:443"},
		{"192.0.2.9:443", "10.0.0.1:40000"}, // the client is the higher address
		{"10.0.0.1:443", "10.0.0.1:40000"},  // same address: the ports decide
		{"[2001:db8::1]:40000", "[2001:db8::2]:443"},
		{"[2001:db8::9]:40000", "[2001:db8::2]:443"},
	} {
		c, s := netip.MustParseAddrPort(tc.client), netip.MustParseAddrPort(tc.server)
		want := connKey{src: c.Addr().As16(), dst: s.Addr().As16(), sport: c.Port(), dpt: s.Port(), proto: 6}.canonical()
		for _, dir := range [][2]netip.AddrPort{{c, s}, {s, c}} {
			b := packet.AppendTCP(nil, packet.TCPSpec{Src: dir[0], Dst: dir[1], Flags: packet.ACK, TTL: 64})
			got, ok := tupleOf(b)
			if !ok || got != want {
				t.Errorf("%v -> %v: tupleOf = %+v, %v; want %+v", dir[0], dir[1], got, ok, want)
			}
			need := 20 + 4 // the IP header and the ports
			if c.Addr().Is6() {
				need = 40 + 4
			}
			for cut := range need {
				if _, ok := tupleOf(b[:cut]); ok {
					t.Errorf("%v -> %v cut to %d bytes: accepted", dir[0], dir[1], cut)
				}
			}
		}
	}
	if _, ok := tupleOf([]byte{0x55, 0, 0, 0}); ok {
		t.Error("IP version 5 accepted")
	}
}
