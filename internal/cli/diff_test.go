package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/synth"
)

func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "lan.pcapng"), filepath.Join(dir, "dmz.pcap")
	fa, _ := os.Create(a)
	fb, _ := os.Create(b)
	if _, err := synth.WritePair(fa, fb, synth.PairPath{Start: diagStart, Conns: 8, ClockOffset: -2 * time.Second,
		Around: func(i int) bool { return i%4 == 1 }, Strict: true}); err != nil {
		t.Fatal(err)
	}
	fa.Close()
	fb.Close()
	story1, _ := synth.Story1Config(true)
	cfgPath := diagConfig(t, dir, "winroute.cfg", story1)

	code, out, errOut := diagRun("diff", a, b, "--config", cfgPath, "--json", "--html", filepath.Join(dir, "diff.html"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Clock struct {
			Offset int64 `json:"offset_ns"`
		} `json:"clock"`
		ByStatus map[string]int `json:"connections_by_status"`
		Labels   []struct {
			Label   string `json:"label"`
			Packets int    `json:"packets"`
		} `json:"labels"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if r.Clock.Offset != int64(-2*time.Second) || r.ByStatus["asymmetric"] != 2 || r.ByStatus["clean"] != 6 {
		t.Errorf("offset %d statuses %v", r.Clock.Offset, r.ByStatus)
	}
	if len(r.Labels) != 1 || r.Labels[0].Label != "dropped by the firewall: handshake_not_completed" || r.Labels[0].Packets != 6 {
		t.Errorf("labels %+v", r.Labels)
	}

	code, out, _ = diagRun("diff", a, b, "--device", "the blade switch")
	if code != exitOK || !strings.Contains(out, "[asymmetric] tcp 10.1.0.3:40001 -> 10.2.0.2:8080") ||
		!strings.Contains(out, "replies are seen only on B and never cross the blade switch") {
		t.Errorf("exit %d, text:\n%s", code, out)
	}
}

func TestDiffCommandUsage(t *testing.T) {
	for _, args := range [][]string{{"diff"}, {"diff", "a"}, {"diff", "a", "b", "c"}, {"diff", "a", "b", "--max-skew", "-1s"}} {
		if code, _, errOut := diagRun(args...); code != exitUsage || !strings.Contains(errOut, "usage: keepstate diff") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}
