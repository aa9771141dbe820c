package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keepstate/capture"
	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/synth"
)

// capturePlane feeds a capture to the daemon's engine and reporter at the
// capture's own times, as the NFQUEUE workers feed live packets.
type capturePlane struct {
	path string
	eng  *firewall.Engine
	rep  *dataplane.Reporter
	done chan struct{}
}

func (p *capturePlane) Start(context.Context) error {
	r, err := capture.Open(p.path)
	if err != nil {
		return err
	}
	defer r.Close()
	var pp packet.Parsed
	for {
		rec, err := r.Next()
		if err != nil {
			return nil
		}
		d := p.eng.Decide(rec.Data, r.LinkType(), -1, rec.Time, &pp)
		p.rep.Packet(rec.Time, rec.Data, r.LinkType(), &pp, &d)
	}
}
func (p *capturePlane) Close() error {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	return nil
}
func (p *capturePlane) Detach() error            { return p.Close() }
func (p *capturePlane) Wait() error              { <-p.done; return nil }
func (p *capturePlane) Backend() string          { return "capture" }
func (p *capturePlane) Stats() daemon.PlaneStats { return daemon.PlaneStats{Backend: "capture"} }

func pktdropLines(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, "{pktdrop}") {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return out
}

// TestDefaultDropLogLiveAndReplayAgree: with the Logging table at its defaults
// (LogDroppedPackets 0, as Kerio has it), the first story's drops are in the
// daemon's debug log, line for line what `keepstate replay` of the same packets
// with the same configuration shows.
func TestDefaultDropLogLiveAndReplayAgree(t *testing.T) {
	dir := t.TempDir()
	pcap := filepath.Join(dir, "story1.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteStory1(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	story, _ := synth.Story1Config(true)
	// The story's administrator had asked for every drop; here it is Kerio's default.
	cfgText := strings.Replace(string(story), `<variable name="LogDroppedPackets">1</variable>`, `<variable name="LogDroppedPackets">0</variable>`, 1)
	if cfgText == string(story) || strings.Contains(cfgText, "LogDropReasons") {
		t.Fatal("the story's Logging table changed: this test is about its defaults")
	}
	cfg := filepath.Join(dir, "winroute.cfg")
	os.WriteFile(cfg, []byte(cfgText), 0o644)

	code, out, errs := runCLI("replay", "--config", cfg, pcap)
	if code != exitOK {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	replayed := pktdropLines(out)

	d, err := daemon.New(daemon.Options{
		ConfigPath: cfg, LogDir: filepath.Join(dir, "log"), SocketPath: filepath.Join(dir, "admin.sock"),
		Stderr: &strings.Builder{},
		NewPlane: func(eng *firewall.Engine, rep *dataplane.Reporter) (daemon.DataPlane, error) {
			return &capturePlane{path: pcap, eng: eng, rep: rep, done: make(chan struct{})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	debug, err := os.ReadFile(filepath.Join(dir, "log", "debug.log"))
	if err != nil {
		t.Fatal(err)
	}
	live := pktdropLines(string(debug))

	if len(live) == 0 || !strings.Contains(live[0], "packet dropped: 3-way handshake not completed") {
		t.Fatalf("the default debug log misses the story's drops:\n%s", debug)
	}
	t.Logf("%d {pktdrop} lines, live and replayed", len(live))
	if strings.Join(live, "\n") != strings.Join(replayed, "\n") {
		t.Errorf("live debug log (%d lines) and replay (%d lines) differ:\nlive:\n%s\nreplay:\n%s",
			len(live), len(replayed), strings.Join(live, "\n"), strings.Join(replayed, "\n"))
	}
}
