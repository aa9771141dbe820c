package replay

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keepstate/capture"
	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/logging"
	"keepstate/packet"
	"keepstate/reason"
	"keepstate/synth"
)

func story1(t *testing.T) (path string, s *synth.Story1, raw []byte) {
	t.Helper()
	var buf bytes.Buffer
	s, err := synth.WriteStory1(&buf)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "story1.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, s, buf.Bytes()
}

func engineFor(t *testing.T, cfgText []byte) *firewall.Engine {
	t.Helper()
	cfg, err := config.Parse("test.cfg", cfgText)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := cfg.NewEngine(firewall.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// Story 1 with the handshake enforced: every packet of a leaked login is a Tomcat
// reply the firewall cannot place, three per login, and nothing else is dropped.
func TestReplayStory1Strict(t *testing.T) {
	path, s, _ := story1(t)
	cfgText, _ := synth.Story1Config(true)
	eng := engineFor(t, cfgText)
	var logs bytes.Buffer
	rep := &dataplane.Reporter{Engine: eng, Log: logging.New(logging.Config{Debug: logging.Sink{Text: &logs}, Drops: logging.AnyDrop()})}
	sum, err := Run([]string{path}, Options{Engine: eng, Reporter: rep})
	if err != nil {
		t.Fatal(err)
	}
	rep.Log.Close()
	leaked := uint64(s.Leaked())
	wantPackets := uint64(s.Logins)*9 - leaked*6 // 9 per login; the firewall misses 6 of a leaked one
	if sum.Packets != wantPackets || sum.Dropped != 3*leaked || sum.Accepted != wantPackets-3*leaked {
		t.Errorf("packets %d accepted %d dropped %d; want %d, %d, %d", sum.Packets, sum.Accepted, sum.Dropped, wantPackets, wantPackets-3*leaked, 3*leaked)
	}
	if got := sum.DropsByReason[reason.HandshakeNotCompleted.String()]; got != 3*leaked || len(sum.DropsByReason) != 1 {
		t.Errorf("drops by reason = %v", sum.DropsByReason)
	}
	if sum.Connections != uint64(s.Logins)-leaked {
		t.Errorf("connections = %d, want %d", sum.Connections, uint64(s.Logins)-leaked)
	}
	if len(sum.TopDropped) == 0 || sum.TopDropped[0].Drops != 3 {
		t.Errorf("top dropped = %+v", sum.TopDropped)
	}
	if n := strings.Count(logs.String(), "{pktdrop} packet dropped: 3-way handshake not completed (from DMZ, proto:TCP"); n != int(3*leaked) {
		t.Errorf("%d debug lines, want %d:\n%s", n, 3*leaked, logs.String())
	}
	if sum.Failed() {
		t.Errorf("files: %+v", sum.Files)
	}
}

// The JSON summary carries the keys the issue names.
func TestSummaryJSONKeys(t *testing.T) {
	path, _, _ := story1(t)
	cfgText, _ := synth.Story1Config(true)
	sum, err := Run([]string{path}, Options{Engine: engineFor(t, cfgText)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"packets", "accepted", "dropped", "drops_by_reason", "connections"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary JSON lacks %q: %s", k, b)
		}
	}
}

// A capture cut in the middle: every packet before the cut is replayed, the byte
// offset of the cut is reported, and the summary says the file failed.
func TestTruncatedCaptureReportsOffset(t *testing.T) {
	_, _, raw := story1(t)
	cut := len(raw) * 2 / 3
	path := filepath.Join(t.TempDir(), "cut.pcapng")
	if err := os.WriteFile(path, raw[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText, _ := synth.Story1Config(true)
	sum, err := Run([]string{path}, Options{Engine: engineFor(t, cfgText)})
	if err != nil {
		t.Fatal(err)
	}
	f := sum.Files[0]
	if !sum.Failed() || f.Error == "" {
		t.Fatalf("a truncated capture did not fail: %+v", f)
	}
	if f.Offset <= 0 || f.Offset > int64(cut) {
		t.Errorf("offset %d not within the %d bytes given", f.Offset, cut)
	}
	if f.Packets == 0 || sum.Packets != f.Packets {
		t.Errorf("packets before the cut were not replayed: %+v", f)
	}
}

// Gzip-compressed captures replay the same as plain ones.
func TestGzipCapture(t *testing.T) {
	plainPath, _, raw := story1(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzPath := filepath.Join(t.TempDir(), "story1.pcapng.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText, _ := synth.Story1Config(true)
	a, _ := Run([]string{plainPath}, Options{Engine: engineFor(t, cfgText)})
	b, _ := Run([]string{gzPath}, Options{Engine: engineFor(t, cfgText)})
	if a.Packets != b.Packets || a.Dropped != b.Dropped || a.Failed() || b.Failed() {
		t.Errorf("plain %d/%d, gzip %d/%d", a.Packets, a.Dropped, b.Packets, b.Dropped)
	}
}

// An SLL2 capture (tcpdump -i any) names no interfaces, only indexes: with the
// user's index map (to an interface's name or its device's) the ingress is known
// and anti-spoofing applies; without it the ingress is inferred and anti-spoofing
// cannot judge.
func TestSLL2IngressByIndex(t *testing.T) {
	var buf bytes.Buffer
	w, err := capture.NewPcapWriter(&buf, packet.LinkLinuxSLL2, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	add := func(ifindex int32, src, dst string) {
		ip := packet.AppendTCP(nil, packet.TCPSpec{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Flags: packet.SYN, Seq: 1, Window: 1000})
		frame := packet.AppendSLL2(nil, ifindex, packet.PacketHost, [6]byte{1}, ip)
		if err := w.WritePacket(1e18, frame, len(frame)); err != nil {
			t.Fatal(err)
		}
	}
	add(3, "10.1.0.2:40000", "10.2.0.2:8080") // a web server on LAN: fine
	add(3, "10.2.0.9:40001", "10.2.0.2:8080") // a DMZ address arriving on LAN: spoofed
	add(4, "10.1.0.7:40002", "10.2.0.2:8080") // a LAN address arriving on eth2, the DMZ's device: spoofed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "any.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText, _ := synth.Story1Config(true)

	sum, err := Run([]string{path}, Options{Engine: engineFor(t, cfgText), IfIndex: map[int32]string{3: "LAN", 4: "eth2"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1 || sum.DropsByReason[reason.AntiSpoofing.String()] != 2 {
		t.Errorf("with the index map: accepted %d, drops %v; want 1 accepted, 2 anti_spoofing", sum.Accepted, sum.DropsByReason)
	}
	sum, err = Run([]string{path}, Options{Engine: engineFor(t, cfgText)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.DropsByReason[reason.AntiSpoofing.String()] != 0 {
		t.Errorf("without the index map anti-spoofing judged an inferred ingress: %v", sum.DropsByReason)
	}
}

// A sender's capture with TCP segmentation offload, cut by a 128-byte snapshot
// length: a 60 000-byte send shows an IP length of 0 and only its first bytes. The
// record's original length gives its size, so the receiver's acknowledgement of
// all of it passes.
func TestOffloadedSendInCutCapture(t *testing.T) {
	frames := synth.OffloadedSend(netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"), 60_000)
	var buf bytes.Buffer
	w, err := capture.NewPcapWriter(&buf, packet.LinkRaw, 128, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := w.WritePacket(int64(1.7e18)+int64(i)*1000, f, len(f)); err != nil { // cut to the snap length
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tso.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := config.Default().NewEngine(firewall.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run([]string{path}, Options{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets != 5 || sum.Dropped != 0 {
		t.Fatalf("%d packets, %d dropped (%v), want 5 and none; %+v", sum.Packets, sum.Dropped, sum.DropsByReason, sum.Files)
	}
}
