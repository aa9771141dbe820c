package firewall

import (
	"sync"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/policy"
	"keepstate/synth"
)

// Batches decided on one engine from several goroutines at once, while
// connections open and close and a sweeper expires them: Warm reads the index
// without the shard lock, so this is the test the race detector needs. Every
// packet must be counted exactly once, accepted or dropped with a reason.
func TestDecideBatchConcurrent(t *testing.T) {
	eng, err := New(compileModel(t, policy.PermitAll()), unlimited(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := synth.NewTraffic(2000, 20000, 3)
	var pkts [][]byte
	keep := func(ip []byte, _ int) { pkts = append(pkts, append([]byte(nil), ip...)) }
	tr.SYNs(keep)
	tr.Handshakes(keep)
	tr.Data(keep)
	tr.Teardowns(keep)

	const workers = 3
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := new(Batch)
			now := start + int64(w)
			for i, ip := range pkts {
				b.Add(ip, packet.LinkRaw, -1, now)
				now += 1e6
				if b.Full() || i == len(pkts)-1 {
					eng.DecideBatch(b)
					for j := range b.Len() {
						if d := &b.Decisions[j]; d.Action != Accept && d.Reason == 0 {
							t.Errorf("packet dropped without a reason")
						}
					}
					b.Reset()
				}
			}
		}()
	}
	sweeper := make(chan struct{})
	go func() {
		defer close(sweeper)
		for now := start; ; now += 5e8 {
			select {
			case <-done:
				return
			default:
				eng.Expire(now)
			}
		}
	}()
	wg.Wait()
	close(done)
	<-sweeper

	c := eng.Counters()
	var dropped uint64
	for _, n := range c.Dropped {
		dropped += n
	}
	if got, want := c.Accepted+dropped, uint64(workers*len(pkts)); got != want {
		t.Errorf("%d packets counted (%d accepted, %d dropped), want %d", got, c.Accepted, dropped, want)
	}
	if c.Accepted == 0 {
		t.Error("nothing accepted")
	}
}

// A batch that is not full, an empty one, and reuse after Reset all work.
func TestBatchPartialAndReuse(t *testing.T) {
	eng, err := New(compileModel(t, policy.PermitAll()), DefaultSettings(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := new(Batch)
	eng.DecideBatch(b) // empty: nothing to do
	tr := synth.NewTraffic(1, 0, 1)
	var pkts [][]byte
	tr.SYNs(func(ip []byte, _ int) { pkts = append(pkts, append([]byte(nil), ip...)) })
	tr.Handshakes(func(ip []byte, _ int) { pkts = append(pkts, append([]byte(nil), ip...)) })
	now := time.Now().UnixNano()
	for _, ip := range pkts {
		if !b.Add(ip, packet.LinkRaw, -1, now) {
			t.Fatal("Add refused a packet into a batch with room")
		}
	}
	b.Add([]byte{0x45, 0}, packet.LinkRaw, 2, now) // malformed, decided among the others
	eng.DecideBatch(b)
	if b.Len() != len(pkts)+1 {
		t.Fatalf("Len %d, want %d", b.Len(), len(pkts)+1)
	}
	for j := range pkts {
		if d := &b.Decisions[j]; d.Action != Accept {
			t.Errorf("handshake packet %d: %v %v", j, d.Action, d.Reason)
		}
	}
	if d := &b.Decisions[len(pkts)]; d.Action != Drop || d.DecodeErr == nil || d.InIface != 2 {
		t.Errorf("malformed packet: %+v", d)
	}
	b.Reset()
	if b.Len() != 0 || b.Frame(0) != nil {
		t.Error("Reset left packets behind")
	}
	for range BatchSize {
		b.Add(pkts[0], packet.LinkRaw, -1, now)
	}
	if !b.Full() || b.Add(pkts[0], packet.LinkRaw, -1, now) {
		t.Error("a full batch took another packet")
	}
}
