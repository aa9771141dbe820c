package replay

import (
	"os"
	"path/filepath"
	"testing"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/logging"
	"keepstate/reason"
)

// corpusDir is ../shared/corpus/tcpdump from the repository root, where every
// developer machine and CI keep the tcpdump project's regression captures.
func corpusDir(t *testing.T) string {
	t.Helper()
	c := corpusDirIfPresent()
	if c == "" {
		t.Skip("capture corpus not present at ../shared/corpus/tcpdump from the repository root (it sits beside the repository on developer machines and in CI)")
	}
	return c
}

// corpusDirIfPresent is corpusDir, or "" when the corpus is not there.
func corpusDirIfPresent() string {
	dir, err := filepath.Abs(".")
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpus", "tcpdump")
	if _, err := os.Stat(c); err != nil {
		return ""
	}
	return c
}

// Every capture of the corpus goes through replay with full logging and a drop
// capture: read to its end or to a reported offset, every packet accepted or given
// a reason, and no panic.
func TestCorpusReplay(t *testing.T) {
	dir := corpusDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files, failed, packets, dropped int
	var byReason reason.Counters
	for _, ent := range entries {
		if ent.IsDir() || ent.Name() == "LICENSE" {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		files++
		cfg := config.Default()
		cfg.Settings.Require3WayHandshake = false // pick up the mid-stream slices: more code runs
		rep := &dataplane.Reporter{Log: logging.New(logging.Config{
			Debug: logging.Sink{Text: discard{}, JSON: discard{}}, Filter: logging.Sink{Text: discard{}},
			Connection: logging.Sink{Text: discard{}}, Drops: logging.AnyDrop(),
		})}
		eng, err := firewall.New(cfg, firewall.Options{OnConnEnd: rep.ConnEnd, VerifyChecksums: files%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		rep.Engine = eng
		sum, err := Run([]string{path}, Options{Engine: eng, Reporter: rep})
		if err != nil {
			t.Fatalf("%s: %v", ent.Name(), err)
		}
		f := sum.Files[0]
		if f.Error != "" {
			failed++
			if f.Offset < 0 {
				t.Errorf("%s: negative error offset %d", ent.Name(), f.Offset)
			}
		}
		if sum.Accepted+sum.Dropped != sum.Packets {
			t.Errorf("%s: %d accepted + %d dropped != %d packets", ent.Name(), sum.Accepted, sum.Dropped, sum.Packets)
		}
		if sum.dropsByReason[reason.None] != 0 {
			t.Errorf("%s: %d packets dropped without a reason", ent.Name(), sum.dropsByReason[reason.None])
		}
		for r, n := range sum.dropsByReason {
			byReason[r] += n
		}
		packets += int(sum.Packets)
		dropped += int(sum.Dropped)
	}
	if files < 100 {
		t.Errorf("only %d capture files found in %s", files, dir)
	}
	t.Logf("%d captures, %d stopped at a reported error; %d packets, %d dropped: %v", files, failed, packets, dropped, byReason.Map())
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
