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

// withSecurity returns base.cfg with extra SecuritySettings variables.
func withSecurity(t *testing.T, vars string) []byte {
	t.Helper()
	base := string(readFile(t, "testdata/base.cfg"))
	out := strings.Replace(base, `<variable name="AntiSpoofing">0</variable>`, `<variable name="AntiSpoofing">0</variable>`+vars, 1)
	if out == base {
		t.Fatal("base.cfg changed: no AntiSpoofing setting to put settings after")
	}
	return []byte(out)
}

// crash ends the daemon as SIGKILL or a panic would: nothing is saved, the
// hooks stay, the marker stays (its lock goes with the process, as here its
// file descriptor does).
func (h *harness) crash() {
	h.t.Helper()
	d := h.d
	d.stopOnce.Do(func() {}) // the Cleanup's Stop must not save anything
	d.admin.close()
	d.stopBg()
	d.bg.Wait()
	d.state.marker.Close()
	d.logs.close()
}

// next is the daemon started after h with the same files, clock and config.
func (h *harness) next() *harness {
	h2 := &harness{t: h.t, dir: h.dir, opts: h.opts, clk: h.clk, stderr: &syncBuffer{}}
	h2.opts.Stderr = h2.stderr
	h2.start()
	return h2
}

func (h *harness) expect(frame []byte, action firewall.Action, why reason.Reason, what string) firewall.Decision {
	h.t.Helper()
	d := h.plane.inject(frame, h.clk.now())
	if d.Action != action || d.Reason != why {
		h.t.Errorf("%s: %v %v, want %v %v", what, d.Action, d.Reason, action, why)
	}
	return d
}

func TestMarkerTellsCleanFromUncleanStart(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	marker := h.opts.StatePath + MarkerSuffix
	if b, err := os.ReadFile(marker); err != nil || !strings.HasPrefix(string(b), "pid ") {
		t.Fatalf("marker while running: %q %v", b, err)
	}
	h.stop()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a clean stop left the marker: %v", err)
	}
	h2 := h.next()
	if h2.d.state.unclean || strings.Contains(h2.readLog("warning.log"), "unclean start") {
		t.Error("a start after a clean stop counts as unclean")
	}
	h2.crash()
	h3 := h2.next()
	if !h3.d.state.unclean {
		t.Fatal("a start after a crash counts as clean")
	}
	if w := h3.readLog("warning.log"); !strings.Contains(w, "unclean start: the previous keepstate (pid ") ||
		!strings.Contains(w, "connections opened after it are dropped as handshake_not_completed (RecoverAfterCrashSeconds=0)") {
		t.Errorf("warning.log:\n%s", w)
	}
}

// TestCheckpointSurvivesCrash: the table written while running is what the next
// start restores after a crash, and its TCP connections carry on through
// segments the new daemon never saw, in both directions, without a pickup.
func TestCheckpointSurvivesCrash(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	web := newTCPConn("10.1.0.2:40000", "10.2.0.5:8080")
	h.handshake(web)
	h.expect(web.fromClient(packet.ACK|packet.PSH, "GET / HTTP/1.1\r\n\r\n"), firewall.Accept, reason.None, "request")
	h.clk.advance(2 * time.Second)
	if _, err := h.d.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if info := h.status().Snapshot; info == nil || info.Writes != 1 || info.LastConnections != 1 || info.LastBytes != 8+118+21 {
		t.Errorf("snapshot info: %+v", info)
	}
	// Traffic after the checkpoint that the snapshot does not know, then the crash.
	for range 3 {
		h.expect(web.fromServer(packet.ACK|packet.PSH, strings.Repeat("x", 1000)), firewall.Accept, reason.None, "reply before the crash")
	}
	h.crash()
	// While down, with fail open or a stale snapshot, more passes unseen.
	web.fromClient(packet.ACK|packet.PSH, strings.Repeat("y", 70000))
	web.fromServer(packet.ACK|packet.PSH, strings.Repeat("z", 300000))
	h.clk.advance(3 * time.Second)

	h2 := h.next()
	if st := h2.status(); st.Restored != 1 || !st.UncleanStart {
		t.Fatalf("status after the crash: restored %d, unclean %v", st.Restored, st.UncleanStart)
	}
	h2.expect(web.fromServer(packet.ACK|packet.PSH, "more"), firewall.Accept, reason.None, "server after the restart")
	d := h2.expect(web.fromClient(packet.ACK|packet.PSH, "next request"), firewall.Accept, reason.None, "client after the restart")
	if d.Created || d.Recovered {
		t.Errorf("the restored connection was picked up anew: created %v recovered %v", d.Created, d.Recovered)
	}
	var list ConnList
	h2.mustCall(&Request{Cmd: CmdConntrackList}, &list)
	if len(list.Conns) != 1 || !list.Conns[0].Assured || list.Conns[0].State != "ESTABLISHED" || list.Conns[0].Rule != "LAN to web" {
		t.Errorf("restored connection: %+v", list.Conns)
	}
	// Both directions seen again: the windows are enforced.
	h2.expect(web.fromServer(packet.ACK|packet.PSH, "ok"), firewall.Accept, reason.None, "in window")
	stray := newTCPConn("10.2.0.5:8080", "10.1.0.2:40000")
	stray.cseq = web.sseq + 1<<30
	stray.sseq = web.cseq
	h2.expect(stray.fromClient(packet.ACK|packet.PSH, "forged"), firewall.Drop, reason.OutOfWindow, "a segment far outside the relearned window")
}

// TestRecoverAfterCrash: after an unclean start, RecoverAfterCrashSeconds lets
// mid-stream packets of connections the rules permit pick them up, each logged;
// after the window, and always after a clean start or with the setting at 0,
// strict mode drops them.
func TestRecoverAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name    string
		seconds string
		crash   bool
		recover bool
	}{
		{"on after a crash", "30", true, true},
		{"off after a crash", "0", true, false},
		{"on after a clean stop", "30", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "base.cfg")
			os.WriteFile(h.opts.ConfigPath, withSecurity(t, `<variable name="RecoverAfterCrashSeconds">`+tc.seconds+`</variable>`), 0o644)
			h.start()
			if tc.crash {
				h.crash()
			} else {
				h.stop()
			}
			h.clk.advance(time.Second)
			h2 := h.next()

			young := newTCPConn("10.1.0.2:41000", "10.2.0.5:8080")  // opened after the last snapshot
			denied := newTCPConn("10.1.0.2:41001", "10.2.0.5:9999") // no rule permits it
			if tc.recover {
				d := h2.expect(young.fromServer(packet.ACK|packet.PSH, "reply"), firewall.Accept, reason.None, "young connection in the window")
				if !d.Created || !d.Recovered {
					t.Errorf("pickup: created %v recovered %v", d.Created, d.Recovered)
				}
				h2.expect(young.fromClient(packet.ACK, ""), firewall.Accept, reason.None, "its client")
				h2.expect(denied.fromClient(packet.ACK|packet.PSH, "x"), firewall.Drop, reason.DefaultRule, "a pickup the rules refuse")
				w := h2.readLog("warning.log")
				if !strings.Contains(w, "Connection TCP 10.1.0.2:41000 > 10.2.0.5:8080 picked up mid-stream after an unclean start (RecoverAfterCrashSeconds), permitted by rule 'LAN to web'") ||
					strings.Count(w, "picked up mid-stream") != 1 {
					t.Errorf("warning.log:\n%s", w)
				}
			} else {
				h2.expect(young.fromServer(packet.ACK|packet.PSH, "reply"), firewall.Drop, reason.HandshakeNotCompleted, "young connection")
			}
			// After the window, strict mode is strict again.
			h2.clk.advance(31 * time.Second)
			late := newTCPConn("10.1.0.2:41002", "10.2.0.5:8080")
			h2.expect(late.fromClient(packet.ACK|packet.PSH, "x"), firewall.Drop, reason.HandshakeNotCompleted, "after the window")
			if tc.recover {
				h2.expect(young.fromClient(packet.ACK|packet.PSH, "still"), firewall.Accept, reason.None, "the recovered connection after the window")
			}
		})
	}
}

// TestRestoreClosesWhatTheRulesRefuse: a snapshot written under rules that
// permitted a connection is restored under rules that refuse it: it is closed,
// as a configuration change would close it, not let in.
func TestRestoreClosesWhatTheRulesRefuse(t *testing.T) {
	h := newHarness(t, "base.cfg")
	h.start()
	ssh := newTCPConn("10.1.0.2:40022", "10.2.0.5:22")
	h.handshake(ssh)
	h.stop()
	noSSH := strings.Replace(string(readFile(t, "testdata/base.cfg")), "<variable name=\"Service\">SSH</variable>\n      <variable name=\"Action\">Permit</variable>",
		"<variable name=\"Service\">SSH</variable>\n      <variable name=\"Action\">Drop</variable>", 1)
	os.WriteFile(h.opts.ConfigPath, []byte(noSSH), 0o644)
	h2 := h.next()
	if !strings.Contains(h2.stderr.String(), "restored 0 connection(s)") || !strings.Contains(h2.stderr.String(), "1 closed: the rules in force refuse them") {
		t.Errorf("stderr:\n%s", h2.stderr.String())
	}
	h2.expect(ssh.fromClient(packet.ACK|packet.PSH, "ls"), firewall.Drop, reason.RuleChanged, "the refused connection's next packet")
}

// TestFailModeOfAStop: a plain stop (SIGTERM) leaves the hooks with fail
// closed, so nothing passes unfiltered, and removes them with fail open.
func TestFailModeOfAStop(t *testing.T) {
	for _, open := range []bool{false, true} {
		h := newHarness(t, "base.cfg")
		h.opts.FailOpen = open
		h.start()
		h.stop()
		if h.plane.detached == open {
			t.Errorf("fail open %v: detached %v", open, h.plane.detached)
		}
	}
}
