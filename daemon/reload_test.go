package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

func (h *harness) importFile(name, confirmWithin string, res *ImportResult) error {
	data := readFile(h.t, filepath.Join("testdata", name))
	req := &Request{Cmd: CmdConfigImport, Name: name, Data: data, ConfirmWithin: confirmWithin}
	if res == nil {
		return h.call(req, nil)
	}
	return h.call(req, res)
}

// waitPendingGone polls status until no change awaits confirmation.
func (h *harness) waitPendingGone() *Status {
	h.t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if st := h.status(); st.Pending == nil {
			return st
		}
	}
	h.t.Fatal("the pending change never went away")
	return nil
}

// newSSH says whether a new SSH connection from the administrator's machine
// (source port sport) gets its SYN through.
func (h *harness) newSSH(sport int) firewall.Decision {
	c := newTCPConn(fmt.Sprintf("10.1.0.9:%d", sport), "10.2.0.5:22")
	return h.plane.inject(c.fromClient(packet.SYN, ""), h.clk.now())
}

func TestImportRefusedChangesNothing(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)
	before := h.status()
	onDisk := readFile(t, h.opts.ConfigPath)

	bad := []byte("<config>\n<table name=\"ConnTrack\">\n  <variable name=\"TcpEstablishedTimout\">9000</variable>\n</table>\n" +
		"<table name=\"SecuritySettings\">\n  <variable name=\"Require3WayHandshake\">no</variable>\n</table>\n</config>\n")
	err := h.call(&Request{Cmd: CmdConfigImport, Name: "/tmp/edited/winroute.cfg", Data: bad, ConfirmWithin: "30s"}, nil)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("import of a bad configuration: %v", err)
	}
	wantProblems := []string{
		`/tmp/edited/winroute.cfg:3: unknown setting "TcpEstablishedTimout" (did you mean TcpEstablishedTimeout?)`,
		`/tmp/edited/winroute.cfg:6: Require3WayHandshake: want 0 or 1, got "no"`,
	}
	if re.Msg != "configuration from /tmp/edited/winroute.cfg refused (2 problem(s)); nothing changed" ||
		strings.Join(re.Errors, "\n") != strings.Join(wantProblems, "\n") {
		t.Errorf("refusal %q\n%s", re.Msg, strings.Join(re.Errors, "\n"))
	}
	// A bundle that is not one: its own message.
	err = h.call(&Request{Cmd: CmdConfigImport, Name: "x.tgz", Data: []byte{0x1f, 0x8b, 0, 0}}, nil)
	if !errors.As(err, &re) || len(re.Errors) != 1 || !strings.HasPrefix(re.Errors[0], "x.tgz") {
		t.Errorf("corrupt bundle: %v", err)
	}

	after := h.status()
	if after.Config != before.Config || after.Pending != nil || after.Connections != 1 {
		t.Errorf("status changed:\n%+v\n%+v", before, after)
	}
	if !bytesEqual(readFile(t, h.opts.ConfigPath), onDisk) {
		t.Error("--config rewritten by a refused import")
	}
	if d := h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now()); d.Action != firewall.Accept {
		t.Errorf("connection lost: %v %v", d.Action, d.Reason)
	}
	h.stop()
	if w := h.readLog("warning.log"); !strings.Contains(w, `configuration from /tmp/edited/winroute.cfg refused, nothing changed: /tmp/edited/winroute.cfg:3: unknown setting "TcpEstablishedTimout" (did you mean TcpEstablishedTimeout?) (and 1 more)`) {
		t.Errorf("warning.log:\n%s", w)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestConfirmWithinRollsBack is the first story's lockout: the administrator
// disables his own SSH rule by mistake, cannot confirm, and the firewall goes
// back by itself.
func TestConfirmWithinRollsBack(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	baseHash := h.status().Config.Hash
	onDisk := readFile(t, h.opts.ConfigPath)
	admin := newTCPConn("10.1.0.9:50000", "10.2.0.5:22")
	h.handshake(admin)
	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)

	var res ImportResult
	if err := h.importFile("lockout.cfg", "300ms", &res); err != nil {
		t.Fatal(err)
	}
	if res.Pending == nil || res.Pending.RollbackHash != baseHash || res.Pending.Hash != res.Config.Hash ||
		res.Closed != 1 || res.Kept != 1 || res.Saved != "" || res.Config.Generation != 2 ||
		!res.Pending.Deadline.Equal(testEpoch.Add(300*time.Millisecond)) {
		t.Fatalf("import result %+v pending %+v", res, res.Pending)
	}
	// The lockout: the admin's session is gone, a new one is refused.
	if d := h.plane.inject(admin.fromClient(packet.ACK, ""), h.clk.now()); d.Action == firewall.Accept {
		t.Error("the admin's session survived a configuration that refuses it")
	}
	if d := h.newSSH(50001); d.Action != firewall.Drop || d.Reason != reason.DefaultRule {
		t.Errorf("new SSH under the lockout: %v %v", d.Action, d.Reason)
	}
	if st := h.status(); st.Pending == nil || st.Pending.Hash != res.Config.Hash || st.Config.Hash != res.Config.Hash {
		t.Errorf("status during the wait: %+v %+v", st.Config, st.Pending)
	}

	st := h.waitPendingGone()
	if st.Config.Hash != baseHash || st.Config.Generation != 3 || st.Connections != 1 {
		t.Errorf("after the deadline: %+v, %d connection(s)", st.Config, st.Connections)
	}
	if d := h.newSSH(50002); d.Action != firewall.Accept {
		t.Errorf("SSH after the rollback: %v %v", d.Action, d.Reason)
	}
	if d := h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now()); d.Action != firewall.Accept {
		t.Errorf("web connection lost across import and rollback: %v %v", d.Action, d.Reason)
	}
	if !bytesEqual(readFile(t, h.opts.ConfigPath), onDisk) {
		t.Error("--config rewritten by an unconfirmed change")
	}
	err := h.call(&Request{Cmd: CmdConfigConfirm}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Msg, "no configuration change awaits confirmation (in force: "+baseHash) {
		t.Errorf("late confirm: %v", err)
	}
	h.stop()
	w := h.readLog("warning.log")
	for _, want := range []string{
		"configuration " + res.Config.Hash + " from lockout.cfg in force (1 connection(s) closed, 1 kept); it rolls back to " + baseHash + " unless confirmed within 300ms",
		"configuration " + res.Config.Hash + " from lockout.cfg not confirmed within the time given: rolled back to " + baseHash + " from " + h.opts.ConfigPath,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warning.log lacks %q:\n%s", want, w)
		}
	}
}

func TestConfirmKeepsAndSaves(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	var res ImportResult
	if err := h.importFile("timeout.cfg", "1h", &res); err != nil {
		t.Fatal(err)
	}
	if err := h.importFile("timeout.cfg", "2h", nil); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("2h confirmation: %v", err)
	}
	var conf ConfirmResult
	h.mustCall(&Request{Cmd: CmdConfigConfirm}, &conf)
	if conf.Config.Hash != res.Config.Hash || conf.Saved != h.opts.ConfigPath {
		t.Errorf("confirm %+v", conf)
	}
	// What was imported is saved byte for byte, comments included.
	if !bytesEqual(readFile(t, h.opts.ConfigPath), readFile(t, "testdata/timeout.cfg")) {
		t.Error("--config is not the imported file")
	}
	st := h.status()
	if st.Pending != nil || st.Config.Hash != res.Config.Hash || h.d.Engine().Settings().Conntrack.Timeouts.TCPEstablished != 9000*time.Second {
		t.Errorf("after confirm: %+v %+v", st.Config, st.Pending)
	}
	h.stop()
	if w := h.readLog("warning.log"); !strings.Contains(w, "configuration "+res.Config.Hash+" from timeout.cfg confirmed and saved to "+h.opts.ConfigPath) {
		t.Errorf("warning.log:\n%s", w)
	}
}

// TestReloadKeepsConnections: an import without confirmation and a SIGHUP
// reload both swap the rules under a live connection that keeps flowing.
func TestReloadKeepsConnections(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)

	var res ImportResult
	if err := h.importFile("timeout.cfg", "", &res); err != nil {
		t.Fatal(err)
	}
	if res.Closed != 0 || res.Kept != 1 || res.Pending != nil || res.Saved != h.opts.ConfigPath {
		t.Errorf("import %+v", res)
	}
	if !bytesEqual(readFile(t, h.opts.ConfigPath), readFile(t, "testdata/timeout.cfg")) {
		t.Error("--config not saved at once")
	}
	if d := h.plane.inject(web.fromServer(packet.ACK|packet.PSH, "hello"), h.clk.now()); d.Action != firewall.Accept || d.Created {
		t.Errorf("after import: %v %v created=%v", d.Action, d.Reason, d.Created)
	}
	h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now()) // acknowledged: not on the 300 s unacked timeout
	var list ConnList
	h.mustCall(&Request{Cmd: CmdConntrackList}, &list)
	if len(list.Conns) != 1 || list.Conns[0].Timeout != 9000 {
		t.Errorf("timeout after import: %+v", list.Conns)
	}

	// SIGHUP: the administrator edits the file back by hand.
	copyFile(t, "testdata/base.cfg", h.opts.ConfigPath)
	rr, err := h.d.Reload()
	if err != nil || rr.Closed != 0 || rr.Kept != 1 || rr.Config.Generation != 3 {
		t.Fatalf("reload: %+v %v", rr, err)
	}
	if d := h.plane.inject(web.fromClient(packet.ACK, ""), h.clk.now()); d.Action != firewall.Accept || d.Created {
		t.Errorf("after reload: %v %v", d.Action, d.Reason)
	}
	// A broken file on SIGHUP changes nothing.
	os.WriteFile(h.opts.ConfigPath, []byte("<config>\n<bogus/>\n</config>\n"), 0o644)
	if _, err := h.d.Reload(); err == nil {
		t.Error("broken file reloaded")
	}
	if st := h.status(); st.Config.Generation != 3 || st.Connections != 1 {
		t.Errorf("after a failed reload: %+v", st.Config)
	}
}

// TestImportIntoBundleFolder: with --config a bundle folder, a confirmed import
// is installed there member by member, and export gives it back.
func TestImportIntoBundleFolder(t *testing.T) {
	h := newHarness(t, "base.cfg")
	folder := filepath.Join(h.dir, "etc")
	os.Mkdir(folder, 0o755)
	copyFile(t, "testdata/base.cfg", filepath.Join(folder, "winroute.cfg"))
	h.opts.ConfigPath = folder
	h.start()
	if err := h.importFile("lockout.cfg", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"version", "host.cfg", "logs.cfg", "UserDB.cfg", "winroute.cfg"} {
		if _, err := os.Stat(filepath.Join(folder, m)); err != nil {
			t.Errorf("%s not installed: %v", m, err)
		}
	}
	var exp ExportResult
	h.mustCall(&Request{Cmd: CmdConfigExport}, &exp)
	if exp.Unconfirmed || exp.Hash != h.status().Config.Hash || len(exp.Bundle) < 100 {
		t.Errorf("export: hash %s unconfirmed %v %d bytes", exp.Hash, exp.Unconfirmed, len(exp.Bundle))
	}
	// The exported bundle imports back to the same configuration.
	var res ImportResult
	if err := h.call(&Request{Cmd: CmdConfigImport, Name: "back.tgz", Data: exp.Bundle, ConfirmWithin: "1m"}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Config.Hash != exp.Hash {
		t.Errorf("round trip hash %s, want %s", res.Config.Hash, exp.Hash)
	}
	h.mustCall(&Request{Cmd: CmdConfigExport}, &exp)
	if !exp.Unconfirmed {
		t.Error("export does not say the configuration is unconfirmed")
	}
}

// Switching the debug log to "packets dropped for any reason" takes effect at once,
// without a restart: the first thing an administrator does when logins fail.
func TestImportChangesDebugLogLive(t *testing.T) {
	h := newHarness(t, "base.cfg")
	base := readFile(t, filepath.Join("testdata", "base.cfg"))
	// Quiet: neither the full drop log nor the reasons logged by default.
	quiet := strings.Replace(string(base), `<variable name="LogDroppedPackets">1</variable>`,
		`<variable name="LogDroppedPackets">0</variable><variable name="LogDropReasons"></variable>`, 1)
	if quiet == string(base) {
		t.Fatal("base.cfg no longer sets LogDroppedPackets")
	}
	if err := os.WriteFile(h.opts.ConfigPath, []byte(quiet), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	midStream := func(sport int) {
		c := newTCPConn(fmt.Sprintf("10.1.0.2:%d", sport), "10.2.0.5:8080")
		if d := h.plane.inject(c.fromClient(packet.ACK|packet.PSH, "x"), h.clk.now()); d.Reason != reason.HandshakeNotCompleted {
			t.Fatalf("mid-stream packet: %v", d.Reason)
		}
	}
	midStream(41000)
	if got := h.readLog("debug.log"); strings.Contains(got, "{pktdrop}") {
		t.Fatalf("LogDroppedPackets=0 and no LogDropReasons logged a drop:\n%s", got)
	}
	if err := h.call(&Request{Cmd: CmdConfigImport, Name: "winroute.cfg", Data: base}, nil); err != nil {
		t.Fatal(err)
	}
	midStream(41001)
	got := h.readLog("debug.log")
	if !strings.Contains(got, "{pktdrop} packet dropped: 3-way handshake not completed") || !strings.Contains(got, ":41001 ->") || strings.Contains(got, ":41000 ->") {
		t.Errorf("after importing LogDroppedPackets=1 the debug log shows:\n%s", got)
	}
}
