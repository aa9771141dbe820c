package replay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"keepstate/capture"
	"keepstate/config"
	"keepstate/firewall"
	"keepstate/internal/testcorpus"
	"keepstate/packet"
	"keepstate/synth"
)

// observed is one packet's decision as replay reported it.
type observed struct {
	t int64
	p packet.Parsed
	d firewall.Decision
}

// comparable drops what legitimately differs between two engines given the same
// packets: connection ids carry the shard, and shards follow a per-table random
// hash seed.
func (o observed) comparable() observed {
	o.d.Conn.ID = 0
	return o
}

// Replay decides in batches (firewall.Batch). Batching must change nothing but
// speed: every packet of every corpus capture, and of a busy synthetic link, gets
// exactly the decision that deciding one packet at a time with DecideInto gives,
// in strict and in loose mode.
func TestBatchedReplayDecidesAsOneByOne(t *testing.T) {
	paths := testcorpus.Captures()
	if len(paths) == 0 {
		t.Log(testcorpus.Missing() + ": synthetic traffic only")
	}
	busy := filepath.Join(t.TempDir(), "busy.pcap")
	f, err := os.Create(busy)
	if err != nil {
		t.Fatal(err)
	}
	// 3 000 connections opened, interleaved and closed, one packet every 20 ms:
	// an expiry sweep (one a second) every 50 packets, so at every place in a
	// batch, and the last SYNs time out (120 s) before their SYN-ACKs come.
	if _, err := synth.WriteTrafficEvery(f, synth.NewTraffic(3000, 60000, 7), time.Unix(1.7e9, 0), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, busy)

	var packets, differing int
	for i, path := range paths {
		for _, strict := range []bool{true, false} {
			cfg := config.Default()
			cfg.Settings.Require3WayHandshake = strict
			opts := firewall.Options{VerifyChecksums: i%2 == 0}
			batched := replayObserved(t, path, cfg, opts)
			single := decideOneByOne(t, path, cfg, opts)
			if len(batched) != len(single) {
				t.Errorf("%s (strict %v): %d packets replayed, %d decided one by one", filepath.Base(path), strict, len(batched), len(single))
				continue
			}
			packets += len(batched)
			for j := range batched {
				if batched[j].comparable() != single[j].comparable() {
					differing++
					if differing <= 5 {
						t.Errorf("%s (strict %v) packet %d: batched %+v\none by one %+v",
							filepath.Base(path), strict, j+1, batched[j].d, single[j].d)
					}
				}
			}
		}
	}
	if differing > 0 {
		t.Errorf("%d of %d decisions differ", differing, packets)
	}
	t.Logf("%d captures, %d decisions compared", len(paths), packets)
}

func replayObserved(t *testing.T, path string, cfg *config.Config, opts firewall.Options) []observed {
	t.Helper()
	eng, err := cfg.NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []observed
	_, err = Run([]string{path}, Options{Engine: eng, Observe: func(at int64, p *packet.Parsed, d *firewall.Decision) {
		out = append(out, observed{at, *p, *d})
	}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decideOneByOne is replay's loop as it was before batches: DecideInto per packet,
// with the same expiry sweeps.
func decideOneByOne(t *testing.T, path string, cfg *config.Config, opts firewall.Options) []observed {
	t.Helper()
	eng, err := cfg.NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := capture.NewReader(f)
	if err != nil {
		return nil // replay reports the same error and decides nothing
	}
	ingress := NewIngress(eng, nil)
	var out []observed
	var lastExpire int64
	for {
		pkt, err := rd.Next()
		if err != nil {
			return out
		}
		if pkt.Time-lastExpire >= ExpireEvery {
			eng.Expire(pkt.Time)
			lastExpire = pkt.Time
		}
		var o observed
		o.t = pkt.Time
		eng.DecideCutInto(pkt.Data, pkt.OrigLen, pkt.Link, ingress.Of(rd, &pkt), pkt.Time, &o.p, &o.d)
		out = append(out, o)
	}
}
