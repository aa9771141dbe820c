package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// TestAdminStatusStatsListFlush runs the daemon on a temporary socket, opens a
// connection and drops a stray packet through the fake plane, and reads it all
// back over the socket.
func TestAdminStatusStatsListFlush(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()

	if fi, err := os.Stat(h.opts.SocketPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v", err, fi.Mode())
	}

	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)
	h.clk.advance(1500 * time.Millisecond)
	if d := h.plane.inject(web.fromClient(packet.ACK|packet.PSH, "GET / HTTP/1.0\r\n\r\n"), h.clk.now()); d.Action != firewall.Accept {
		t.Fatalf("data: %v %v", d.Action, d.Reason)
	}
	// Acknowledged: data left unacknowledged would put the connection on the
	// 300 s timeout Linux gives to dead peers.
	if d := h.plane.inject(web.fromServer(packet.ACK, ""), h.clk.now()); d.Action != firewall.Accept {
		t.Fatalf("ack: %v %v", d.Action, d.Reason)
	}
	// A reply from a server for a connection nobody opened: the first story.
	stray := newTCPConn("10.1.0.3:40001", "10.2.0.5:8080")
	if d := h.plane.inject(stray.fromServer(packet.ACK|packet.PSH, "x"), h.clk.now()); d.Reason != reason.HandshakeNotCompleted {
		t.Fatalf("stray: %v %v", d.Action, d.Reason)
	}
	h.clk.advance(2 * time.Second)

	st := h.status()
	if st.Backend != "fake" || st.FailMode != "closed" || st.Connections != 1 || st.Pending != nil ||
		st.Config.Generation != 1 || st.Config.Path != h.opts.ConfigPath || st.Socket != h.opts.SocketPath ||
		st.UptimeSeconds != 3.5 || st.PID != os.Getpid() {
		t.Errorf("status %+v", st)
	}
	h.d.mu.Lock()
	wantHash := ConfigHash(h.d.cur.bundle.Config)
	h.d.mu.Unlock()
	if st.Config.Hash != wantHash || len(wantHash) != 16 {
		t.Errorf("hash %q, want %q", st.Config.Hash, wantHash)
	}

	var stats Stats
	h.mustCall(&Request{Cmd: CmdStats}, &stats)
	if stats.Packets != 6 || stats.Accepted != 5 || stats.Dropped != 1 ||
		len(stats.DropsByReason) != 1 || stats.DropsByReason["handshake_not_completed"] != 1 {
		t.Errorf("stats packets %d accepted %d dropped %d by reason %v", stats.Packets, stats.Accepted, stats.Dropped, stats.DropsByReason)
	}
	if stats.Conntrack.Connections != 1 || stats.Conntrack.Created != 1 || stats.QueueDrops != 6 || stats.NetlinkErrors != 4 || stats.Plane.Packets != 6 {
		t.Errorf("stats conntrack %+v queue drops %d netlink errors %d plane packets %d",
			stats.Conntrack, stats.QueueDrops, stats.NetlinkErrors, stats.Plane.Packets)
	}

	var list ConnList
	h.mustCall(&Request{Cmd: CmdConntrackList, Filter: []string{"dport", "8080", "state", "established"}}, &list)
	if list.Total != 1 || list.Matched != 1 || len(list.Conns) != 1 {
		t.Fatalf("list %+v", list)
	}
	got := list.Conns[0]
	got.ID = 0
	want := Conn{Proto: "TCP", Src: "10.1.0.2", SrcPort: 40000, Dst: "10.2.0.5", DstPort: 8080,
		State: "ESTABLISHED", Assured: true, Age: 3.5, Idle: 2, Timeout: 86400, TimeoutLeft: 86398,
		PacketsOrig: 3, PacketsReply: 2, BytesOrig: 40 + 40 + 58, BytesReply: 40 + 40, Rule: "LAN to web"}
	if got != want {
		t.Errorf("conn\n got %+v\nwant %+v", got, want)
	}
	h.mustCall(&Request{Cmd: CmdConntrackList, Filter: []string{"dport", "22"}}, &list)
	if list.Total != 1 || list.Matched != 0 || len(list.Conns) != 0 {
		t.Errorf("list dport 22: %+v", list)
	}

	var flushed FlushResult
	h.mustCall(&Request{Cmd: CmdConntrackFlush, Filter: []string{"src", "10.9.0.0/16"}}, &flushed)
	if flushed.Flushed != 0 {
		t.Errorf("flush of nothing: %d", flushed.Flushed)
	}
	h.mustCall(&Request{Cmd: CmdConntrackFlush, Filter: []string{"src", "10.1.0.2"}}, &flushed)
	if flushed.Flushed != 1 || h.d.Engine().Table().Len() != 0 {
		t.Errorf("flush: %d, table %d", flushed.Flushed, h.d.Engine().Table().Len())
	}
	// The flushed connection's next packet is judged as a new one: in strict mode
	// a mid-stream packet is refused.
	if d := h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now()); d.Action == firewall.Accept {
		t.Errorf("packet of a flushed connection accepted")
	}

	var bad *RemoteError
	if err := h.call(&Request{Cmd: CmdConntrackList, Filter: []string{"dport", "http"}}, nil); !errors.As(err, &bad) ||
		bad.Msg != `filter: dport "http": not a port (0-65535)` {
		t.Errorf("bad filter: %v", err)
	}
	if err := h.call(&Request{Cmd: "reboot"}, nil); !errors.As(err, &bad) || bad.Msg != `unknown command "reboot"` {
		t.Errorf("unknown command: %v", err)
	}

	h.stop()
	if !h.plane.detached || !strings.Contains(h.stderr.String(), "stopping: hooks left in place (fail closed)") {
		t.Error("a plain stop with fail closed removed the hooks: traffic would pass unfiltered")
	}
	if _, err := os.Stat(h.opts.SocketPath); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}
	warn := h.readLog("warning.log")
	if !strings.Contains(warn, "1 connection(s) flushed by the administrator (filter: src 10.1.0.2)") {
		t.Errorf("warning.log:\n%s", warn)
	}
	if dbg := h.readLog("debug.log"); !strings.Contains(dbg, "3-way handshake not completed") {
		t.Errorf("debug.log:\n%s", dbg)
	}
	// The flushed connection's rule logs connections.
	if conn := h.readLog("connection.log"); !strings.Contains(conn, "10.1.0.2:40000") {
		t.Errorf("connection.log:\n%s", conn)
	}
	for _, want := range []string{"running: backend fake, fail closed", "saved 0 connection(s) to " + h.opts.StatePath} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, h.stderr.String())
		}
	}
}
