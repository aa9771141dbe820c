package daemon

import (
	"os"
	"strings"
	"testing"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// TestSnapshotAcrossRestart: a connection open when the daemon stops is known to
// the next daemon, whose first packet for it is accepted mid-stream in strict
// mode; the downtime counts as idle time, so a half-open connection whose time
// ran out meanwhile is not restored.
func TestSnapshotAcrossRestart(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)
	h.plane.inject(web.fromClient(packet.ACK|packet.PSH, "GET /long-poll HTTP/1.1\r\n\r\n"), h.clk.now())
	h.plane.inject(web.fromServer(packet.ACK|packet.PSH, "HTTP/1.1 100 Continue\r\n\r\n"), h.clk.now())
	h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now())
	halfOpen := newTCPConn("10.1.0.3:40001", "10.2.0.5:8080")
	h.plane.inject(halfOpen.fromClient(packet.SYN, ""), h.clk.now()) // SYN_SENT: 120 s
	h.clk.advance(10 * time.Second)
	h.d.KeepHooksOnStop() // a restart: the hooks stay for the next daemon
	h.stop()
	if !h.plane.detached || !strings.Contains(h.stderr.String(), "stopping for a restart: hooks left in place until the next start (fail closed)") {
		t.Errorf("restart stop: detached %v", h.plane.detached)
	}
	if !strings.Contains(h.stderr.String(), "saved 2 connection(s) to "+h.opts.StatePath) {
		t.Fatalf("stderr:\n%s", h.stderr.String())
	}
	if fi, err := os.Stat(h.opts.StatePath); err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(h.clk.now()) {
		t.Fatalf("snapshot file: %v %v", err, fi)
	}

	// Down for 200 s: longer than SYN_SENT's 120 s, far shorter than ESTABLISHED's.
	h.clk.advance(200 * time.Second)
	h2 := &harness{t: t, dir: h.dir, opts: h.opts, clk: h.clk, stderr: &syncBuffer{}}
	h2.opts.Stderr = h2.stderr
	h2.start()
	if want := "restored 1 connection(s) from " + h.opts.StatePath + ", saved 3m20s ago (1 expired meanwhile)"; !strings.Contains(h2.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, h2.stderr.String())
	}
	if _, err := os.Stat(h.opts.StatePath); !os.IsNotExist(err) {
		t.Errorf("snapshot not removed after restore: %v", err)
	}
	st := h2.status()
	if st.Restored != 1 || st.Connections != 1 {
		t.Errorf("status: restored %d, connections %d", st.Restored, st.Connections)
	}
	var list ConnList
	h2.mustCall(&Request{Cmd: CmdConntrackList}, &list)
	if len(list.Conns) != 1 || list.Conns[0].Idle != 210 || list.Conns[0].State != "ESTABLISHED" || list.Conns[0].PacketsOrig != 4 || list.Conns[0].PacketsReply != 2 {
		t.Errorf("restored connection: %+v", list.Conns)
	}
	d := h2.plane.inject(web.fromServer(packet.ACK|packet.PSH, "HTTP/1.1 200 OK\r\n\r\n"), h2.clk.now())
	if d.Action != firewall.Accept || d.Created {
		t.Errorf("first packet after the restart: %v %v created=%v", d.Action, d.Reason, d.Created)
	}
	if d := h2.plane.inject(web.fromClient(packet.ACK, ""), h2.clk.now()); d.Action != firewall.Accept {
		t.Errorf("second packet after the restart: %v %v", d.Action, d.Reason)
	}
	h2.mustCall(&Request{Cmd: CmdConntrackList}, &list)
	if list.Total != 1 || list.Matched != 1 || len(list.Conns) != 1 || list.Conns[0].Idle != 0 {
		t.Errorf("after two packets the restored connection is listed %d time(s) (total %d): %+v", list.Matched, list.Total, list.Conns)
	}

	// Without the snapshot the same packet is what the first story saw.
	h3 := newHarness(t, "base.cfg")
	h3.start()
	if d := h3.plane.inject(web.fromServer(packet.ACK|packet.PSH, "more"), h3.clk.now()); d.Reason != reason.HandshakeNotCompleted {
		t.Errorf("without a snapshot: %v %v", d.Action, d.Reason)
	}
}

func TestCorruptSnapshotSetAside(t *testing.T) {
	h := newHarness(t, "base.cfg")
	os.MkdirAll(h.dir+"/state", 0o755)
	os.WriteFile(h.opts.StatePath, []byte("KSCT\x01\x00\x00\x00garbage"), 0o600)
	h.start()
	if st := h.status(); st.Restored != 0 || st.Connections != 0 {
		t.Errorf("status %+v", st)
	}
	if _, err := os.Stat(h.opts.StatePath + ".corrupt"); err != nil {
		t.Errorf("not set aside: %v", err)
	}
	h.stop()
	if e := h.readLog("error.log"); !strings.Contains(e, "connection snapshot "+h.opts.StatePath+": conntrack snapshot: ") ||
		!strings.Contains(e, "set aside as "+h.opts.StatePath+".corrupt, starting with an empty table") {
		t.Errorf("error.log:\n%s", e)
	}
}
