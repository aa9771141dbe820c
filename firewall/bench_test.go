package firewall

import (
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/policy"
	"keepstate/synth"
)

// benchEngine opens flows connections through an engine with the built-in default
// configuration and returns it with the traffic's data packets, ready to replay.
func benchEngine(b *testing.B, flows int) (*Engine, [][]byte) {
	b.Helper()
	s := unlimited()
	s.Conntrack.MaxConns = flows * 2
	e, err := New(compileModel(b, policy.PermitAll()), s, Options{})
	if err != nil {
		b.Fatal(err)
	}
	tr := synth.NewTraffic(flows, 1<<18, 1)
	var p packet.Parsed
	now := time.Now().UnixNano()
	open := func(ip []byte, _ int) {
		if d := e.Decide(ip, packet.LinkRaw, -1, now, &p); d.Action != Accept {
			b.Fatalf("handshake packet dropped: %v", d.Reason)
		}
	}
	tr.SYNs(open)
	tr.Handshakes(open)
	var data [][]byte
	tr.Data(func(ip []byte, _ int) { data = append(data, append([]byte(nil), ip...)) })
	return e, data
}

func benchmarkEstablished(b *testing.B, flows int) {
	e, data := benchEngine(b, flows)
	var p packet.Parsed
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := e.Decide(data[i&(len(data)-1)], packet.LinkRaw, -1, now, &p); d.Action != Accept {
			b.Fatalf("established packet dropped: %v", d.Reason)
		}
	}
}

// benchmarkEstablishedBatch is benchmarkEstablished deciding BatchSize packets
// per DecideBatch call, as the feeders do.
func benchmarkEstablishedBatch(b *testing.B, flows int) {
	e, data := benchEngine(b, flows)
	batch := new(Batch)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch.Add(data[i&(len(data)-1)], packet.LinkRaw, -1, now)
		if batch.Full() || i == b.N-1 {
			e.DecideBatch(batch)
			for j := range batch.Len() {
				if d := &batch.Decisions[j]; d.Action != Accept {
					b.Fatalf("established packet dropped: %v", d.Reason)
				}
			}
			batch.Reset()
		}
	}
}

// The established path: decode, lookup, state and window update, verdict.
func BenchmarkEstablished10k(b *testing.B)      { benchmarkEstablished(b, 10_000) }
func BenchmarkEstablished1M(b *testing.B)       { benchmarkEstablished(b, 1_000_000) }
func BenchmarkEstablishedBatch10k(b *testing.B) { benchmarkEstablishedBatch(b, 10_000) }
func BenchmarkEstablishedBatch1M(b *testing.B)  { benchmarkEstablishedBatch(b, 1_000_000) }

// A new connection: decode, lookup miss, rules, insert.
func BenchmarkNewConnection(b *testing.B) {
	s := unlimited()
	s.Conntrack.MaxConns = b.N + 1024
	e, err := New(compileModel(b, policy.PermitAll()), s, Options{})
	if err != nil {
		b.Fatal(err)
	}
	tr := synth.NewTraffic(b.N, 0, 1)
	var syns [][]byte
	tr.SYNs(func(ip []byte, _ int) { syns = append(syns, append([]byte(nil), ip...)) })
	var p packet.Parsed
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := e.Decide(syns[i], packet.LinkRaw, -1, now, &p); d.Action != Accept {
			b.Fatalf("SYN dropped: %v", d.Reason)
		}
	}
}
