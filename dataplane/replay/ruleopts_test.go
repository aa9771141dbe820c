package replay

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/logging"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
	"keepstate/synth"
)

// writeCapture writes what rec recorded to a file of the test's.
func writeCapture(t *testing.T, name string, rec *synth.Recorder) string {
	t.Helper()
	var buf bytes.Buffer
	if err := rec.WritePcapNG(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func replayLogged(t *testing.T, cfg *config.Config, paths ...string) (*Summary, string) {
	t.Helper()
	var logs bytes.Buffer
	rep := &dataplane.Reporter{Log: logging.New(logging.Config{Debug: logging.Sink{Text: &logs}, Drops: logging.AnyDrop()})}
	eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: rep.ConnEnd})
	if err != nil {
		t.Fatal(err)
	}
	rep.Engine = eng
	sum, err := Run(paths, Options{Engine: eng, Reporter: rep})
	if err != nil || sum.Failed() {
		t.Fatalf("replay: %v %+v", err, sum.Files)
	}
	rep.Log.Close()
	return sum, logs.String()
}

// Story 1, fixed narrowly: Handshake=loose on "Web servers to Tomcat" only. The
// logins whose requests the switch leaked now work, while a leaked conversation
// under another rule (Internet to web servers, which stays strict) is still
// dropped as handshake_not_completed.
func TestReplayStory1LooseRule(t *testing.T) {
	path, s, _ := story1(t)
	text, _ := synth.Story1Config(true)
	text = synth.SetRuleOption(text, "Web servers to Tomcat", "Handshake", "loose")
	cfg, err := config.Parse("story1.cfg", text)
	if err != nil {
		t.Fatal(err)
	}
	// After the story: a web server answers an Internet client whose requests
	// the firewall never saw.
	rec := synth.NewRecorder("WAN", "LAN")
	c := synth.NewConv(netip.MustParseAddrPort("198.51.100.77:50000"), netip.MustParseAddrPort("10.1.0.2:443"), 9)
	at := time.Date(2012, 9, 23, 12, 0, 0, 0, time.UTC)
	c.Segment(synth.FromClient, packet.SYN, 0)
	rec.Add("LAN", at, c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0))
	c.Segment(synth.FromClient, packet.ACK, 0)
	c.Segment(synth.FromClient, packet.ACK|packet.PSH, 200)
	rec.Add("LAN", at.Add(5*time.Millisecond), c.Segment(synth.FromServer, packet.ACK|packet.PSH, 1200))
	other := writeCapture(t, "other.pcapng", rec)

	sum, logs := replayLogged(t, cfg, path, other)
	leaked := uint64(s.Leaked())
	if sum.Dropped != 2 || sum.DropsByReason[reason.HandshakeNotCompleted.String()] != 2 {
		t.Errorf("dropped %d %v; want only the other rule's 2 packets", sum.Dropped, sum.DropsByReason)
	}
	if sum.Connections != uint64(s.Logins) {
		t.Errorf("connections %d, want every login's %d (%d of them picked up)", sum.Connections, s.Logins, leaked)
	}
	if n := strings.Count(logs, "3-way handshake not completed"); n != 2 || !strings.Contains(logs, "10.1.0.2:443") {
		t.Errorf("drop log:\n%s", logs)
	}
}

// Story 2, fixed narrowly: IdleTimeout=9000 on "Application to database" only,
// with TcpEstablishedTimeout left at 3600. The database's keep-alives every 2 h
// pass and the pool's reuse works; an idle connection of another rule still
// expires after 3600 s, and its late packet says so.
func TestReplayStory2RuleIdleTimeout(t *testing.T) {
	var buf bytes.Buffer
	s, err := synth.WriteStory2(&buf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "story2.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	text, _ := synth.Story2Config(3600)
	text = synth.SetRuleOption(text, "Application to database", "IdleTimeout", "9000")
	cfg, err := config.Parse("story2.cfg", text)
	if err != nil {
		t.Fatal(err)
	}
	// Another rule: administrators' SSH to the database host.
	cfg.Policy.Services = append(cfg.Policy.Services, policy.Service{ID: 9, Name: "SSH", Protocol: policy.ProtoTCP, Ports: []policy.PortRange{{Lo: 22, Hi: 22}}})
	cfg.Policy.Rules = append(cfg.Policy.Rules, policy.Rule{ID: 9, Name: "Admin to database", Enabled: true, Action: policy.Permit,
		Source: []policy.Term{policy.Host(netip.MustParseAddr("10.0.1.11"))}, Destination: []policy.Term{policy.Host(netip.MustParseAddr("10.0.2.20"))},
		Services: []string{"SSH"}})

	rec := synth.NewRecorder("LAN", "DB")
	c := synth.NewConv(netip.MustParseAddrPort("10.0.1.11:40022"), netip.MustParseAddrPort("10.0.2.20:22"), 5)
	at := s.Reuse.Add(time.Minute)
	rec.Add("LAN", at, c.Segment(synth.FromClient, packet.SYN, 0))
	rec.Add("DB", at.Add(time.Millisecond), c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0))
	rec.Add("LAN", at.Add(2*time.Millisecond), c.Segment(synth.FromClient, packet.ACK, 0))
	// Two hours idle, then a keep-alive: 7200 s against the global 3600 s.
	rec.Add("DB", at.Add(2*time.Hour), c.KeepAlive(synth.FromServer))
	other := writeCapture(t, "ssh.pcapng", rec)

	sum, logs := replayLogged(t, cfg, path, other)
	if sum.Dropped != 1 || sum.DropsByReason[reason.StateExpired.String()] != 1 {
		t.Errorf("dropped %d %v; want the other rule's keep-alive only", sum.Dropped, sum.DropsByReason)
	}
	if !strings.Contains(logs, "TcpEstablishedTimeout") || !strings.Contains(logs, "10.0.2.20:22") || strings.Contains(logs, ":1521") {
		t.Errorf("drop log:\n%s", logs)
	}

	// Without the option the pool's keep-alives are what is dropped, and the log
	// names the global timeout; with a rule timeout too short, the rule's.
	text, _ = synth.Story2Config(3600)
	text = synth.SetRuleOption(text, "Application to database", "IdleTimeout", "7000")
	short, err := config.Parse("story2.cfg", text)
	if err != nil {
		t.Fatal(err)
	}
	sum, logs = replayLogged(t, short, path)
	if sum.DropsByReason[reason.StateExpired.String()] == 0 || !strings.Contains(logs, "IdleTimeout of rule 'Application to database'") {
		t.Errorf("IdleTimeout 7000: %v\n%s", sum.DropsByReason, logs)
	}
}
