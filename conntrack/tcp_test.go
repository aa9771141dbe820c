package conntrack

import (
	"testing"
	"time"
	"unsafe"

	"keepstate/packet"
	"keepstate/reason"
)

func TestLayoutSizes(t *testing.T) {
	if got := unsafe.Sizeof(Key{}); got != 37 {
		t.Errorf("Key is %d bytes, want 37", got)
	}
	if got := unsafe.Sizeof(entry{}); got != 112 {
		t.Errorf("entry is %d bytes, want 112", got)
	}
}

func TestStateNames(t *testing.T) {
	want := map[State]string{
		StateNone: "NONE", StateSynSent: "SYN_SENT", StateSynRecv: "SYN_RECV",
		StateEstablished: "ESTABLISHED", StateFinWait: "FIN_WAIT", StateCloseWait: "CLOSE_WAIT",
		StateLastAck: "LAST_ACK", StateTimeWait: "TIME_WAIT", StateClose: "CLOSE",
		StateSynSent2: "SYN_SENT2", StateUDPUnreplied: "UDP_UNREPLIED", StateUDPReplied: "UDP_REPLIED",
		StateICMPUnreplied: "ICMP_UNREPLIED", StateICMPReplied: "ICMP_REPLIED",
		StateOtherUnreplied: "OTHER_UNREPLIED", StateOtherReplied: "OTHER_REPLIED", numStates: "INVALID",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("State(%d) = %q, want %q", s, s.String(), w)
		}
	}
}

func TestInvalidFlags(t *testing.T) {
	tests := []struct {
		flags packet.TCPFlags
		valid bool
	}{
		{0, false},
		{S | F, false},
		{S | R, false},
		{F, false},
		{F | P, false},
		{packet.URG, false},
		{S | F | R | P | packet.URG | A, false}, // christmas tree
		{R | F | A, false},
		{S, true},
		{S | packet.ECE | packet.CWR, true},
		{SA, true},
		{A, true},
		{PA, true},
		{FA, true},
		{FA | P, true},
		{R, true},
		{RA, true},
		{A | packet.URG, true},
	}
	for _, tt := range tests {
		if got := validFlags(tt.flags); got != tt.valid {
			t.Errorf("validFlags(%#x) = %v, want %v", tt.flags, got, tt.valid)
		}
		if tt.valid {
			continue
		}
		for _, tab := range []*Table{strictTable(), looseTable()} {
			r := tab.Track(seg(Original, tt.flags, 1, 1, 0), t0)
			if r.Verdict != Drop || r.Reason != reason.InvalidTCPFlags {
				t.Errorf("Track(flags %#x) = %v/%v, want drop/invalid_tcp_flags", tt.flags, r.Verdict, r.Reason)
			}
		}
	}
}

const (
	c1 = cliISN + 1
	s1 = srvISN + 1
)

func TestTCPScenarios(t *testing.T) {
	hs := handshake()
	tests := []struct {
		name   string
		strict bool
		steps  []step
	}{
		{"full life, client closes", true, concat(hs, []step{
			{p: seg(Original, PA, c1, s1, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, s1, c1+100, 200), verdict: Accept, state: StateEstablished},
			{p: seg(Original, FA, c1+100, s1+200, 0), verdict: Accept, state: StateFinWait},
			{p: seg(Reply, A, s1+200, c1+101, 0), verdict: Accept, state: StateCloseWait},
			{p: seg(Reply, FA, s1+200, c1+101, 0), verdict: Accept, state: StateLastAck},
			{p: seg(Original, A, c1+101, s1+201, 0), verdict: Accept, state: StateTimeWait},
			{p: seg(Original, A, c1+101, s1+201, 0), verdict: Accept, state: StateTimeWait},
		})},
		{"both FIN at once", true, concat(hs, []step{
			{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
			{p: seg(Reply, FA, s1, c1+1, 0), verdict: Accept, state: StateLastAck},
			{p: seg(Original, A, c1+1, s1+1, 0), verdict: Accept, state: StateTimeWait},
		})},
		{"FIN from SYN_RECV", true, concat(hs[:2], []step{
			{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
		})},
		{"simultaneous open", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, S, srvISN, 0, 0), verdict: Accept, state: StateSynSent2},
			{p: seg(Original, SA, cliISN, srvISN+1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, SA, srvISN, cliISN+1, 0), verdict: Accept, state: StateSynRecv}, // ignored
			{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished},
		}},
		{"RST answering the SYN", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, RA, 0, cliISN+1, 0), verdict: Accept, state: StateClose},
		}},
		{"RST in window closes", true, concat(hs, []step{
			{p: seg(Reply, R, s1, 0, 0), verdict: Accept, state: StateClose},
			{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateClose},
		})},
		{"RST in window but not exact passes and closes nothing", true, concat(hs, []step{
			{p: seg(Original, PA, c1, s1, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, A, s1, c1+100, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, R, s1+30000, 0, 0), verdict: Accept, state: StateEstablished}, // a blind guess
			{p: seg(Original, R, c1+99, 0, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+100, s1, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, RA, s1, c1+200, 0), verdict: Accept, state: StateClose}, // the exact one
		})},
		{"inexact RST before the handshake completed closes", true, concat(hs[:2], []step{
			{p: seg(Original, R, c1+100, 0, 0), verdict: Accept, state: StateClose},
		})},
		{"RST out of window is dropped", true, concat(hs, []step{
			{p: seg(Reply, R, s1+10_000_000, 0, 0), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished},
		})},
		{"SYN-ACK acking the wrong sequence", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, SA, srvISN, cliISN+999, 0), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Reply, SA, srvISN, cliISN+1, 0), verdict: Accept, state: StateSynRecv},
		}},
		{"strict: SYN-ACK from the originator", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, SA, cliISN, srvISN, 0), verdict: Drop, reason: reason.HandshakeWrongDirection},
		}},
		// RFC 5961 section 4: the server still holds a connection on these ports
		// (its old client restarted) and answers the new SYN with an ACK from
		// that connection; the client resets it with the ACK's number, and its
		// next SYN opens the connection.
		{"strict: challenge ACK answering the SYN, the RST that clears it, SYN again", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, A, 77_000, 3_000_000, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, R, 3_000_000, 0, 0), verdict: Accept, state: StateClose},
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, SA, srvISN, cliISN+1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished},
		}},
		{"loose: challenge ACK answering the SYN, the RST that clears it", false, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, A, 77_000, 3_000_000, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, R, 3_000_000, 0, 0), verdict: Accept, state: StateClose},
		}},
		{"a RST that answers no challenge ACK stays out of the window", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, A, 77_000, 3_000_000, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, R, 3_000_001, 0, 0), verdict: Drop, reason: reason.OutOfWindow},
		}},
		{"ACK from the originator before the SYN-ACK", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, A, c1, srvISN, 0), verdict: Drop, reason: reason.HandshakeWrongDirection},
		}},
		{"FIN from the originator before the SYN-ACK", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Original, FA, c1, srvISN, 0), verdict: Drop, reason: reason.HandshakeWrongDirection},
		}},
		// TCP Fast Open (RFC 7413): the server answers the data of the SYN before
		// the client's ACK arrives. Only the originator's ACK establishes.
		{"strict: responder data before the final ACK", true, concat(hs[:2], []step{
			{p: seg(Reply, PA, s1, c1, 10), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, A, s1+10, c1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Original, A, c1, s1+10, 0), verdict: Accept, state: StateEstablished},
		})},
		{"strict: TCP Fast Open, and its SYN retransmitted without the data", true, []step{
			{p: seg(Original, S, cliISN, 0, 200), verdict: Accept, state: StateSynSent},
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, SA, srvISN, c1+200, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, PA, s1, c1+200, 1000), verdict: Accept, state: StateSynRecv},
			{p: seg(Original, A, c1+200, s1+1000, 0), verdict: Accept, state: StateEstablished},
		}},
		{"strict: split handshake, the responder speaks first", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, S, srvISN, 0, 0), verdict: Accept, state: StateSynSent2},
			{p: seg(Original, SA, cliISN, s1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, A, s1, c1, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, s1, c1, 300), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1, s1+300, 100), verdict: Accept, state: StateEstablished},
		}},
		{"strict: simultaneous open, the second side speaks first", true, []step{
			{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
			{p: seg(Reply, S, srvISN, 0, 0), verdict: Accept, state: StateSynSent2},
			{p: seg(Original, SA, cliISN, s1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, SA, srvISN, c1, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Reply, PA, s1, c1, 300), verdict: Accept, state: StateEstablished},
			{p: seg(Original, SA, cliISN, s1, 0), verdict: Drop, reason: reason.InvalidState}, // a SYN-ACK from the originator once established
		}},
		// The client rebooted and opens a new connection on the same ports; the
		// old one's end never crossed the firewall. The server's SYN-ACK of the
		// new SYN takes the entry into the new connection (Linux does the same).
		{"new connection on the ports of one whose end was not seen", true, concat(hs, []step{
			{p: seg(Original, PA, c1, s1, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Original, S, 3_000_000_000, 0, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, SA, 1_000_000_000, 3_000_000_001, 0), verdict: Accept, state: StateSynRecv},
			{p: seg(Original, A, 3_000_000_001, 1_000_000_001, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, 3_000_000_001, 1_000_000_001, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, 1_000_000_001, 3_000_000_101, 300), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+100, s1, 100), verdict: Drop, reason: reason.OutOfWindow}, // the old connection is gone
		})},
		{"a SYN-ACK that acknowledges another SYN than the one ignored is ignored", true, concat(hs, []step{
			{p: seg(Original, S, 3_000_000_000, 0, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, SA, 1_000_000_000, 3_000_000_002, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1, s1, 100), verdict: Accept, state: StateEstablished},
		})},
		{"a SYN-ACK after the connection moved on since the ignored SYN is ignored", true, concat(hs, []step{
			{p: seg(Original, S, 3_000_000_000, 0, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1, s1, 100), at: time.Second, verdict: Accept, state: StateEstablished},
			{p: seg(Reply, SA, 1_000_000_000, 3_000_000_001, 0), at: time.Second, verdict: Accept, state: StateEstablished},
			{p: seg(Reply, A, s1, c1+100, 0), at: time.Second, verdict: Accept, state: StateEstablished},
		})},
		{"SYN from the responder when established", true, concat(hs, []step{
			{p: seg(Reply, S, 77, 0, 0), verdict: Drop, reason: reason.InvalidState},
		})},
		{"SYN from the originator when established is ignored", true, concat(hs, []step{
			{p: seg(Original, S, 99999, 0, 0), verdict: Accept, state: StateEstablished},
		})},
		{"strict: mid-stream without connection", true, []step{
			{p: seg(Reply, PA, 2673204299, 173509679, 52), verdict: Drop, reason: reason.HandshakeNotCompleted},
			{p: seg(Reply, SA, 1, 2, 0), verdict: Drop, reason: reason.HandshakeNotCompleted},
			{p: seg(Original, FA, 1, 2, 0), verdict: Drop, reason: reason.HandshakeNotCompleted},
			{p: seg(Original, R, 1, 0, 0), verdict: Drop, reason: reason.HandshakeNotCompleted},
		}},
		{"loose: pickup, liberal until the reply", false, []step{
			{p: seg(Reply, PA, 2673204299, 173509679, 52), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, PA, 2673204299+52+900_000_000, 173509679, 52), verdict: Accept, state: StateEstablished},
			{p: seg(Original, A, 173509679, 2673204299+52, 0), verdict: Accept, state: StateEstablished},
			// Its windows stay guesses (the scale was never seen): as Linux, not enforced.
			{p: seg(Reply, PA, (2673204299+52+2_000_000_000)%(1<<32), 173509679, 52), verdict: Accept, state: StateEstablished},
			{p: seg(Original, A, 173509679+900_000, 2673204299+52, 0), verdict: Accept, state: StateEstablished},
		}},
		{"loose: FIN or RST without connection", false, []step{
			{p: seg(Original, FA, 1, 2, 0), verdict: Drop, reason: reason.HandshakeNotCompleted},
			{p: seg(Original, R, 1, 0, 0), verdict: Drop, reason: reason.HandshakeNotCompleted},
		}},
		{"data beyond the receiver's window", true, concat(hs, []step{
			{p: seg(Original, PA, c1+140000, s1, 100), verdict: Drop, reason: reason.OutOfWindow},
			{p: seg(Original, PA, c1+65000, s1, 535), verdict: Accept, state: StateEstablished},
		})},
		// The server's window update (its ACK of the first segment) never reached
		// the firewall: the client's next segment lies beyond the window the
		// firewall last saw, by less than a window. It passes, and the server's
		// ACK of it, which acknowledges data the firewall would otherwise not
		// know was sent, passes and brings the windows back in step.
		{"data beyond a window update the firewall missed", true, concat(hs, []step{
			{p: seg(Original, PA, c1+64000, s1, 1460), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+65460, s1, 1460), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+66920, s1, 1460), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, A, s1, c1+68380, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+68380, s1, 1460), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1+68380+65535+65535, s1, 1460), verdict: Drop, reason: reason.OutOfWindow},
		})},
		{"ack of data never sent", true, concat(hs, []step{
			{p: seg(Original, A, c1, s1+5000, 0), verdict: Drop, reason: reason.OutOfWindow},
		})},
		{"old retransmission below the window", true, concat(hs, []step{
			{p: seg(Original, PA, c1, s1, 1000), verdict: Accept, state: StateEstablished},
			// Older than a window: the receiver discards it; it passes, changing
			// nothing (Linux ignores it too).
			{p: seg(Original, PA, c1+1<<32-200000, s1, 100), verdict: Accept, state: StateEstablished},
			{p: seg(Original, PA, c1, s1, 1000), verdict: Accept, state: StateEstablished}, // plain retransmission
		})},
		{"keep-alive probe (seq = next-1)", true, concat(hs, []step{
			{p: seg(Original, A, c1-1, s1, 0), verdict: Accept, state: StateEstablished},
			{p: seg(Original, A, c1-1, s1, 1), verdict: Accept, state: StateEstablished},
			{p: seg(Reply, A, s1, c1, 0), verdict: Accept, state: StateEstablished},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, New(Config{Strict: tt.strict}), tt.steps)
		})
	}
}

func TestWindowScaling(t *testing.T) {
	withScale := func(p *packet.Parsed, shift uint8) *packet.Parsed {
		p.TCPOpts.HasWScale, p.TCPOpts.WScale = true, shift
		return p
	}
	// The server advertises 1000 << 7 = 128000 bytes; the client sends 100 kB ahead.
	for _, tt := range []struct {
		name            string
		cliOpt, srvOpt  bool
		shift           uint8
		wantScaledState bool
	}{
		{"both SYNs carry the option", true, true, 7, true},
		{"shift clamped to 14", true, true, 20, true},
		{"only the SYN carries it", true, false, 7, false},
		{"only the SYN-ACK carries it", false, true, 7, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tab := strictTable()
			syn := seg(Original, S, cliISN, 0, 0)
			synack := seg(Reply, SA, srvISN, cliISN+1, 0)
			if tt.cliOpt {
				withScale(syn, tt.shift)
			}
			if tt.srvOpt {
				withScale(synack, tt.shift)
			}
			// The SYN-ACK's window (never scaled) is small too, so that without
			// scaling the data lies more than a window beyond what the server
			// allowed.
			synack.Window = 1000
			ack := seg(Reply, A, s1, c1, 0)
			ack.Window = 1000
			run(t, tab, []step{
				{p: syn, verdict: Accept, state: StateSynSent},
				{p: synack, verdict: Accept, state: StateSynRecv},
				{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished},
				{p: ack, verdict: Accept, state: StateEstablished},
			})
			far := seg(Original, PA, c1+100_000, s1, 1000)
			r := tab.Track(far, t0)
			if got := r.Verdict == Accept; got != tt.wantScaledState {
				t.Fatalf("data 100 kB ahead: %v/%v, want accepted=%v", r.Verdict, r.Reason, tt.wantScaledState)
			}
			e := onlyEntry(t, tab)
			wantShift := uint32(0)
			if tt.wantScaledState {
				wantShift = uint32(min(tt.shift, 14))
			}
			if e.scale(Original) != wantShift || e.scale(Reply) != wantShift {
				t.Fatalf("scales %d/%d, want %d", e.scale(Original), e.scale(Reply), wantShift)
			}
		})
	}
}

func TestSACKRightEdgeBoundsTheAck(t *testing.T) {
	tab := strictTable()
	syn := seg(Original, S, cliISN, 0, 0)
	syn.TCPOpts.SACKPermitted = true
	synack := seg(Reply, SA, srvISN, cliISN+1, 0)
	synack.TCPOpts.SACKPermitted = true
	run(t, tab, []step{
		{p: syn, verdict: Accept, state: StateSynSent},
		{p: synack, verdict: Accept, state: StateSynRecv},
		{p: seg(Original, A, c1, s1, 0), verdict: Accept, state: StateEstablished},
		{p: seg(Reply, PA, s1, c1, 3000), verdict: Accept, state: StateEstablished},
	})
	// A SACK block up to what the server sent is fine; one beyond it acks unsent data.
	ok := seg(Original, A, c1, s1, 0)
	ok.TCPOpts.NumSACK, ok.TCPOpts.SACK[0] = 1, packet.SACKBlock{Left: s1 + 1000, Right: s1 + 3000}
	bad := seg(Original, A, c1, s1, 0)
	bad.TCPOpts.NumSACK, bad.TCPOpts.SACK[0] = 1, packet.SACKBlock{Left: s1 + 1000, Right: s1 + 9000}
	run(t, tab, []step{
		{p: ok, verdict: Accept, state: StateEstablished},
		{p: bad, verdict: Drop, reason: reason.OutOfWindow},
	})
}

func TestRetransmittedSYNDoesNotRefresh(t *testing.T) {
	tab := strictTable()
	run(t, tab, []step{
		{p: seg(Original, S, cliISN, 0, 0), verdict: Accept, state: StateSynSent},
		{p: seg(Original, S, cliISN, 0, 0), at: 100 * time.Second, verdict: Accept, state: StateSynSent},
	})
	if n := tab.Expire(t0 + int64(120*time.Second) - 1); n != 0 {
		t.Fatalf("expired %d before 120 s", n)
	}
	if n := tab.Expire(t0 + int64(120*time.Second)); n != 1 {
		t.Fatalf("expired %d at 120 s after the first SYN, want 1", n)
	}
}

func TestNewSYNInTimeWaitReopens(t *testing.T) {
	var ends []EndCause
	tab := New(Config{Strict: true, OnEnd: func(ci ConnInfo, c EndCause) { ends = append(ends, c) }})
	res := run(t, tab, concat(handshake(), []step{
		{p: seg(Original, FA, c1, s1, 0), verdict: Accept, state: StateFinWait},
		{p: seg(Reply, FA, s1, c1+1, 0), verdict: Accept, state: StateLastAck},
		{p: seg(Original, A, c1+1, s1+1, 0), verdict: Accept, state: StateTimeWait},
	}))
	oldID := res[0].ID
	r := tab.Track(seg(Original, S, cliISN+100000, 0, 0), t0+int64(time.Second))
	if r.Verdict != NewConn {
		t.Fatalf("SYN in TIME_WAIT: %v, want new", r.Verdict)
	}
	if len(ends) != 1 || ends[0] != EndReopened || tab.Len() != 0 {
		t.Fatalf("ends %v, len %d: want the old connection ended as reopened", ends, tab.Len())
	}
	c := tab.Create(seg(Original, S, cliISN+100000, 0, 0), t0+int64(time.Second), Meta{})
	if c.Verdict != Accept || c.ID == oldID || c.State != StateSynSent {
		t.Fatalf("Create: %+v, want a fresh SYN_SENT connection with a new id (old %d)", c, oldID)
	}
	if st := tab.Stats(); st.Reopened != 1 || st.Created != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The same through Create alone, after a RST.
	run(t, tab, []step{
		{p: seg(Reply, SA, srvISN, cliISN+100001, 0), at: time.Second, verdict: Accept, state: StateSynRecv},
		{p: seg(Reply, R, srvISN+1, 0, 0), at: time.Second, verdict: Accept, state: StateClose},
	})
	c2 := tab.Create(seg(Original, S, cliISN+200000, 0, 0), t0+2*int64(time.Second), Meta{})
	if c2.Verdict != Accept || c2.State != StateSynSent || c2.ID == c.ID || tab.Stats().Reopened != 2 {
		t.Fatalf("Create over CLOSE: %+v, stats %+v", c2, tab.Stats())
	}
}

func TestPickupAndTimeouts(t *testing.T) {
	tab := New(Config{Strict: false, Timeouts: Timeouts{TCPPickup: 300 * time.Second}})
	run(t, tab, []step{{p: seg(Reply, PA, 5, 6, 10), verdict: Accept, state: StateEstablished}})
	ci := only(t, tab)
	if ci.Timeout != 300*time.Second || ci.Assured {
		t.Fatalf("picked-up connection: timeout %v assured %v, want 300s, false", ci.Timeout, ci.Assured)
	}
	run(t, tab, []step{{p: seg(Original, A, 6, 15, 0), at: time.Second, verdict: Accept, state: StateEstablished}})
	ci = only(t, tab)
	if ci.Timeout != 24*time.Hour || !ci.Assured {
		t.Fatalf("after the reply: timeout %v assured %v, want 24h, true", ci.Timeout, ci.Assured)
	}
}

// onlyEntry returns the single entry of tab, whatever list it is on.
func onlyEntry(t *testing.T, tab *Table) *entry {
	t.Helper()
	for _, sh := range tab.shards {
		for c := range sh.lists {
			if i := sh.lists[c].head; i != nilIdx {
				return sh.at(i)
			}
		}
	}
	t.Fatal("empty table")
	return nil
}

func TestUnacknowledgedDataTimeout(t *testing.T) {
	tab := New(Config{Strict: true, Timeouts: Timeouts{TCPUnacked: 300 * time.Second}})
	run(t, tab, handshake())
	if ci := only(t, tab); ci.Timeout != 24*time.Hour {
		t.Fatalf("idle established: %v", ci.Timeout)
	}
	// The client sends data the server never acknowledges: the peer may be gone.
	run(t, tab, []step{{p: seg(Original, PA, c1, s1, 500), at: time.Second, verdict: Accept, state: StateEstablished}})
	if ci := only(t, tab); ci.Timeout != 300*time.Second {
		t.Fatalf("with unacknowledged data: %v", ci.Timeout)
	}
	// A keep-alive probe (seq = next-1, one byte) sends nothing new.
	run(t, tab, []step{
		{p: seg(Reply, A, s1, c1+500, 0), at: 2 * time.Second, verdict: Accept, state: StateEstablished},
		{p: seg(Original, A, c1+499, s1, 1), at: 3 * time.Second, verdict: Accept, state: StateEstablished},
	})
	if ci := only(t, tab); ci.Timeout != 24*time.Hour {
		t.Fatalf("after the ack and a keep-alive: %v", ci.Timeout)
	}
	run(t, tab, []step{{p: seg(Reply, PA, s1, c1+500, 100), at: 4 * time.Second, verdict: Accept, state: StateEstablished}})
	if n := tab.Expire(t0 + 4*sec + 300*sec - 1); n != 0 {
		t.Fatal("expired early")
	}
	if n := tab.Expire(t0 + 4*sec + 300*sec); n != 1 {
		t.Fatal("unacknowledged connection not expired after 300 s")
	}
	checkInvariants(t, tab)
}

// An inexact RST on an established connection is counted, refreshes no timer and
// leaves the windows alone: the connection expires when it would have without it.
func TestInexactRSTChangesNothing(t *testing.T) {
	tab := New(Config{Strict: true, Timeouts: Timeouts{TCPEstablished: time.Hour}})
	run(t, tab, handshake())
	before := onlyEntry(t, tab).tcp
	run(t, tab, []step{
		{p: seg(Reply, RA, s1+40000, c1, 0), at: 50 * time.Minute, verdict: Accept, state: StateEstablished},
	})
	if got := onlyEntry(t, tab).tcp; got != before {
		t.Errorf("windows changed by the RST: %+v, were %+v", got, before)
	}
	if st := tab.Stats(); st.RSTInexact != 1 {
		t.Errorf("RSTInexact = %d, want 1", st.RSTInexact)
	}
	if n := tab.Expire(t0 + int64(time.Hour)); n != 1 {
		t.Fatalf("expired %d an hour after the handshake, want 1: the RST refreshed the timer", n)
	}
}
