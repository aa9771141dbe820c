package conntrack

import "testing"

// The per-packet counters carry from their low 32 bits into the high ones and wrap
// at 2^39 packets and 2^48 bytes, leaving the list bits in pktsHi alone.
func TestAccountCarries(t *testing.T) {
	cases := []struct {
		name                 string
		packets, bytes       uint64
		add                  int
		wantPackets, wantByt uint64
	}{
		{"plain", 5, 1000, 1500, 6, 2500},
		{"low words full", 1<<32 - 1, 1<<32 - 100, 1500, 1 << 32, 1<<32 + 1400},
		{"bytes exactly to 2^32", 7, 1<<32 - 1500, 1500, 8, 1 << 32},
		{"high words in use", 3<<32 + 9, 5<<32 + 9, 60, 3<<32 + 10, 5<<32 + 69},
		{"wrap", 1<<39 - 1, 1<<48 - 10, 20, 0, 10},
	}
	for _, c := range cases {
		for _, d := range []Dir{Original, Reply} {
			var e entry
			e.setList(clsRefiled) // a list bit set: counters must not touch it
			e.setCounters(d, c.packets, c.bytes)
			e.account(d, c.add)
			if e.packets(d) != c.wantPackets || e.bytes(d) != c.wantByt {
				t.Errorf("%s, %v: got %d packets %d bytes, want %d and %d",
					c.name, d, e.packets(d), e.bytes(d), c.wantPackets, c.wantByt)
			}
			if o := 1 - d; e.packets(o) != 0 || e.bytes(o) != 0 {
				t.Errorf("%s, %v: the other direction changed", c.name, d)
			}
			if e.pktsHi[lOnRefiled]&lFlag == 0 || e.pktsHi[lOnUnacked]&lFlag != 0 {
				t.Errorf("%s, %v: the counters changed the list bits", c.name, d)
			}
		}
	}
}
