package insight

import (
	"testing"

	"keepstate/config"
	"keepstate/dataplane/replay"
	"keepstate/internal/testcorpus"
)

// Every capture of the corpus, odd and malformed ones included, goes through the
// detectors without a panic, and what they find can be described (fixes and all).
// The corpus is replayed as one stream, as `keepstate replay` does with several
// files: connections and detectors carry over from one to the next.
func TestCorpusThroughDetectors(t *testing.T) {
	paths := testcorpus.Need(t)
	cfg := config.Default()
	m := New(Options{})
	m.SetMemory(func() (float64, string) { return testBytesPerConn, "test figure" })
	eng, err := cfg.NewEngine(firewallOptions(m))
	if err != nil {
		t.Fatal(err)
	}
	o := replay.Options{Engine: eng}
	WatchReplay(&o, m, cfg)
	if _, err := replay.Run(paths, o); err != nil {
		t.Fatal(err)
	}
	ins := m.Insights()
	for _, in := range ins {
		if in.Summary == "" || in.Kind == "" {
			t.Errorf("insight without words: %+v", in)
		}
	}
	for _, in := range ins {
		t.Log(in.Kind, ": ", in.Summary)
	}
	st := m.Stats()
	t.Logf("%d captures, %d events, %d insights, %d groups left out", len(paths), st.Events, len(ins), st.GroupsDropped)
}
