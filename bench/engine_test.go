package bench

import (
	"encoding/json"
	"testing"
)

// A small run: every synthetic packet is accepted, nothing allocates per packet,
// the memory figure is that of a connection, and the JSON carries the keys the
// issue names.
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
	if r.EstablishedNsPerPacket <= 0 || r.NewConnectionNs <= 0 || r.MapLookupNs <= 0 || r.NewConnectionSamples != 30000 {
		t.Errorf("timings missing: %+v", r)
	}
	if _, err := RunEngine(EngineOptions{Flows: 0, Packets: 1}); err == nil {
		t.Error("zero flows accepted")
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"established_ns_per_packet", "new_connection_ns", "allocs_per_packet", "bytes_per_connection", "map_lookup_ns", "flows", "packets"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}
