package firewall

import (
	"encoding/binary"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/policy"
	"keepstate/synth"
)

// splitFrames cuts data into frames, each prefixed by a 2-byte length (a short or
// missing tail becomes the last frame), at most 256 of them.
func splitFrames(data []byte) [][]byte {
	var frames [][]byte
	for len(data) > 0 && len(frames) < 256 {
		if len(data) < 2 {
			return append(frames, data)
		}
		n := int(binary.BigEndian.Uint16(data)) % 1600
		data = data[2:]
		n = min(n, len(data))
		frames = append(frames, data[:n])
		data = data[n:]
	}
	return frames
}

// Any sequence of raw frames gets the same decisions in batches as one by one, on
// two engines with the same configuration (strict or loose), and neither panics.
func FuzzDecideBatch(f *testing.F) {
	tr := synth.NewTraffic(3, 12, 1)
	var seed []byte
	add := func(ip []byte, _ int) {
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(ip)))
		seed = append(seed, ip...)
	}
	tr.SYNs(add)
	tr.Handshakes(add)
	tr.Data(add)
	tr.Teardowns(add)
	f.Add(seed, true)
	f.Add(seed, false)
	f.Add([]byte{0, 20, 0x45, 0, 0, 20}, true)

	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		s := DefaultSettings()
		s.Conntrack.Strict = strict
		s.Conntrack.MaxConns = 4096 // small engines: two are built per input
		s.Conntrack.AdaptiveStart, s.Conntrack.AdaptiveEnd = Adaptive(4096, DefaultAdaptiveStartPercent, DefaultAdaptiveEndPercent)
		rs := compileModel(t, policy.PermitAll())
		one, err := New(rs, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		batched, err := New(rs, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		frames := splitFrames(data)
		now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
		var p packet.Parsed
		want := make([]Decision, len(frames))
		for i, fr := range frames {
			one.DecideInto(fr, packet.LinkRaw, -1, now+int64(i)*1000, &p, &want[i])
		}
		b := new(Batch)
		var got []Decision
		for i, fr := range frames {
			b.Add(fr, packet.LinkRaw, -1, now+int64(i)*1000)
			if b.Full() || i == len(frames)-1 {
				batched.DecideBatch(b)
				got = append(got, b.Decisions[:b.Len()]...)
				b.Reset()
			}
		}
		for i := range want {
			w, g := want[i], got[i]
			w.Conn.ID, g.Conn.ID = 0, 0 // ids carry the shard, which a per-table hash seed picks
			if w != g {
				t.Fatalf("frame %d: one by one %+v, batched %+v", i, w, g)
			}
		}
	})
}
