package reason

import (
	"strings"
	"testing"
)

// Every reason has a unique identifier in snake_case, words for the log, and parses
// back; the list fits the 64-bit masks that filter it (logging.DropFilter).
func TestReasons(t *testing.T) {
	if Count > 64 {
		t.Fatalf("%d reasons do not fit a 64-bit mask", Count)
	}
	seen := map[string]Reason{}
	for r := Reason(0); int(r) < Count; r++ {
		id, text := r.String(), r.Text()
		if id == "" || id == "unknown" || text == "" || text == "unknown reason" {
			t.Errorf("reason %d: id %q text %q", r, id, text)
		}
		if strings.ToLower(id) != id || strings.ContainsAny(id, " -") {
			t.Errorf("reason %d: id %q is not snake_case", r, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("reasons %d and %d share the id %q", other, r, id)
		}
		seen[id] = r
		if back, ok := Parse(id); !ok || back != r {
			t.Errorf("Parse(%q) = %d, %v", id, back, ok)
		}
	}
	if _, ok := Parse("no_such_reason"); ok {
		t.Error("Parse accepted an unknown id")
	}
	if HandshakeNotCompleted.Text() != "3-way handshake not completed" {
		t.Errorf("the debug log must keep Kerio's wording, got %q", HandshakeNotCompleted.Text())
	}
	if got := len(All()); got != Count-1 {
		t.Errorf("All() lists %d reasons, want %d (every one but None)", got, Count-1)
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	c[None] = 5 // accepted packets are not drops
	c[OutOfWindow] = 2
	c[StateExpired] = 3
	if c.Total() != 5 {
		t.Errorf("Total = %d, want 5", c.Total())
	}
	m := c.Map()
	if len(m) != 2 || m["out_of_window"] != 2 || m["state_expired"] != 3 {
		t.Errorf("Map = %v", m)
	}
}
