package packet_test

import (
	"errors"
	"io"
	"sort"
	"testing"

	"keepstate/capture"
	"keepstate/internal/testcorpus"
	"keepstate/packet"
)

// TestCorpus decodes every packet of every capture with a link type the decoder
// knows, checking the same invariants as FuzzDecode. It is a crash and
// out-of-bounds test, not a test of verdicts.
func TestCorpus(t *testing.T) {
	files := testcorpus.Need(t)
	if testing.Short() {
		files = files[:min(len(files), 50)]
	}
	var total, ok int
	byErr := map[string]int{}
	var p packet.Parsed
	for _, path := range files {
		r, err := capture.Open(path)
		if err != nil {
			continue // not a capture the reader accepts: the capture package's business
		}
		for {
			pkt, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					byErr["(capture read error)"]++
				}
				break
			}
			total++
			derr := p.Decode(pkt.Data, pkt.Link)
			packet.CheckDecodeInvariants(t, pkt.Data, pkt.Link, &p, derr)
			if t.Failed() {
				t.Fatalf("%s, packet at offset %d", path, pkt.Offset)
			}
			if derr == nil {
				ok++
				if cerr := p.VerifyChecksums(pkt.Data); cerr != nil {
					byErr[cerr.Error()]++
				}
				continue
			}
			byErr[derr.Error()]++
		}
		r.Close()
	}
	if total < 1000 {
		t.Fatalf("only %d packets read from %d files: is the capture reader working?", total, len(files))
	}
	if ok == 0 {
		t.Fatalf("no packet of %d decoded", total)
	}
	t.Logf("%d files, %d packets, %d decoded", len(files), total, ok)
	keys := make([]string, 0, len(byErr))
	for k := range byErr {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return byErr[keys[i]] > byErr[keys[j]] })
	for _, k := range keys {
		t.Logf("%7d  %s", byErr[k], k)
	}
}
