package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/synth"
)

// diagRun runs one command line in-process.
func diagRun(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// diagFile writes a file produced by write into dir and returns its path.
func diagFile(t *testing.T, dir, name string, write func(f *os.File) error) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func diagConfig(t *testing.T, dir, name string, data []byte) string {
	return diagFile(t, dir, name, func(f *os.File) error { _, err := f.Write(data); return err })
}

func TestAdviseCommand(t *testing.T) {
	dir := t.TempDir()
	capPath := diagFile(t, dir, "story2.pcapng", func(f *os.File) error { _, err := synth.WriteStory2(f); return err })
	cfg3600, _ := synth.Story2Config(3600)
	cfgPath := diagConfig(t, dir, "winroute.cfg", cfg3600)
	html := filepath.Join(dir, "advise.html")

	code, out, errOut := diagRun("advise", capPath, "--config", cfgPath, "--bytes-per-conn", "125", "--json", "--html", html)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Timeouts []struct {
			Name     string `json:"name"`
			CurrentS int64  `json:"current_s"`
			AdvisedS int64  `json:"advised_s"`
			Cut      int    `json:"connections_cut"`
		} `json:"timeouts"`
		Memory struct {
			BytesPerConn float64 `json:"bytes_per_connection"`
			Current      struct {
				Peak int `json:"peak_connections"`
			} `json:"current"`
		} `json:"memory"`
		WithKeepAlives int `json:"with_keepalives"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if len(r.Timeouts) != 1 || r.Timeouts[0].Name != "TcpEstablishedTimeout" || r.Timeouts[0].CurrentS != 3600 ||
		r.Timeouts[0].AdvisedS != 8100 || r.Timeouts[0].Cut != 3 {
		t.Errorf("timeouts %+v", r.Timeouts)
	}
	if r.Memory.BytesPerConn != 125 || r.Memory.Current.Peak != 3 || r.WithKeepAlives != 3 {
		t.Errorf("memory %+v keep-alives %d", r.Memory, r.WithKeepAlives)
	}
	page, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(page, []byte("<title>keepstate advise</title>")) {
		t.Errorf("html report: %v", err)
	}

	// Without a figure, advise measures one (small here, to keep the test quick).
	code, out, errOut = diagRun("advise", capPath, "--config", cfgPath, "--measure-flows", "2000")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "measuring memory per tracked connection (keepstate bench engine, 2000 flows)") ||
		!strings.Contains(out, "measured now: keepstate bench engine, 2000 flows") ||
		!strings.Contains(out, "TcpEstablishedTimeout 3600 s (1 h) cuts 3 connections") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

func TestAdviseCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"advise"},
		{"advise", "a.pcap", "b.pcap"},
		{"advise", "a.pcap", "--bytes-per-conn", "-1"},
		{"advise", "a.pcap", "--margin", "0"},
	} {
		if code, _, errOut := diagRun(args...); code != exitUsage || !strings.Contains(errOut, "usage: keepstate advise") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, _, errOut := diagRun("advise", filepath.Join(t.TempDir(), "missing.pcap"), "--bytes-per-conn", "100"); code != exitFail || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing capture: exit %d, stderr %q", code, errOut)
	}
}

var diagStart = time.Date(2012, 9, 23, 11, 0, 0, 0, time.UTC)
