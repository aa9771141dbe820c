package replay

import (
	"path/filepath"
	"testing"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/internal/testcorpus"
	"keepstate/logging"
	"keepstate/reason"
)

// Every capture of the corpus goes through replay with full logging and a drop
// capture: read to its end or to a reported offset, every packet accepted or given
// a reason, and no panic.
func TestCorpusReplay(t *testing.T) {
	paths := testcorpus.Need(t)
	var files, failed, packets, dropped int
	var byReason reason.Counters
	for _, path := range paths {
		name := filepath.Base(path)
		files++
		cfg := config.Default()
		cfg.Settings.Require3WayHandshake = false // pick up the mid-stream slices: more code runs
		rep := &dataplane.Reporter{Log: logging.New(logging.Config{
			Debug: logging.Sink{Text: discard{}, JSON: discard{}}, Filter: logging.Sink{Text: discard{}},
			Connection: logging.Sink{Text: discard{}}, Drops: logging.AnyDrop(),
		})}
		eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: rep.ConnEnd, VerifyChecksums: files%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		rep.Engine = eng
		sum, err := Run([]string{path}, Options{Engine: eng, Reporter: rep})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := sum.Files[0]
		if f.Error != "" {
			failed++
			if f.Offset < 0 {
				t.Errorf("%s: negative error offset %d", name, f.Offset)
			}
		}
		if sum.Accepted+sum.Dropped != sum.Packets {
			t.Errorf("%s: %d accepted + %d dropped != %d packets", name, sum.Accepted, sum.Dropped, sum.Packets)
		}
		if sum.dropsByReason[reason.None] != 0 {
			t.Errorf("%s: %d packets dropped without a reason", name, sum.dropsByReason[reason.None])
		}
		for r, n := range sum.dropsByReason {
			byReason[r] += n
		}
		packets += int(sum.Packets)
		dropped += int(sum.Dropped)
	}
	if files < 100 {
		t.Errorf("only %d capture files found in %s", files, testcorpus.Dir())
	}
	t.Logf("%d captures, %d stopped at a reported error; %d packets, %d dropped: %v", files, failed, packets, dropped, byReason.Map())
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
