package conntrack

import (
	"testing"
	"time"

	"keepstate/reason"
)

// Story 1 in loose mode: the firewall sees only the responder's side. Its SYN-ACK is
// a reply by definition, so the table offers to create the connection the other way
// round, and the connection then belongs to the client that sent the (unseen) SYN.
func TestReplyPickupFromSynAck(t *testing.T) {
	tab := looseTable()
	synack := seg(Reply, SA, srvISN, cliISN+1, 0)
	r := tab.Track(synack, t0)
	if r.Verdict != NewConn || r.Dir != Reply {
		t.Fatalf("loose SYN-ACK without connection: %v dir %v, want new/reply", r.Verdict, r.Dir)
	}
	r = tab.CreateAs(synack, t0, Meta{Rule: 3}, Reply)
	if r.Verdict != Accept || r.Dir != Reply || r.State != StateEstablished {
		t.Fatalf("CreateAs reply: %v/%v dir %v state %v", r.Verdict, r.Reason, r.Dir, r.State)
	}
	ci := only(t, tab)
	if ci.Src != cliAddr || ci.SrcPort != cliPort || ci.Dst != srvAddr || ci.Meta.Rule != 3 {
		t.Errorf("connection oriented %v:%d -> %v, want the client as originator", ci.Src, ci.SrcPort, ci.Dst)
	}
	if ci.Packets != [2]uint64{0, 1} {
		t.Errorf("packets %v, want the SYN-ACK counted as reply", ci.Packets)
	}
	if ci.Timeout != DefaultTimeouts().TCPPickup {
		t.Errorf("timeout %v, want the pickup cap until the client is heard", ci.Timeout)
	}

	// Only the server's side keeps coming (the client's goes around): liberal, capped.
	steps := []step{
		{p: seg(Reply, PA, srvISN+1, cliISN+311, 52), at: 5 * time.Millisecond, verdict: Accept, state: StateEstablished},
		{p: seg(Reply, FA, srvISN+53, cliISN+312, 0), at: 50 * time.Millisecond, verdict: Accept, state: StateFinWait},
	}
	run(t, tab, steps)
	if ci := only(t, tab); ci.Assured {
		t.Error("assured before the client was ever seen")
	}
}

// Once the other side shows up, the pickup ends: windows are enforced and the
// connection gets the established timeout.
func TestReplyPickupEndsWhenBothSidesSeen(t *testing.T) {
	tab := looseTable()
	synack := seg(Reply, SA, srvISN, cliISN+1, 0)
	tab.Track(synack, t0)
	if r := tab.CreateAs(synack, t0, Meta{}, Reply); r.Verdict != Accept {
		t.Fatalf("CreateAs: %v/%v", r.Verdict, r.Reason)
	}
	run(t, tab, []step{
		{p: seg(Original, A, cliISN+1, srvISN+1, 0), at: time.Millisecond, verdict: Accept, state: StateEstablished},
		{p: seg(Reply, PA, srvISN+1, cliISN+1, 100), at: 2 * time.Millisecond, verdict: Accept, state: StateEstablished},
		// The client acknowledges the data (until then the unacknowledged-data cap applies).
		{p: seg(Original, A, cliISN+1, srvISN+101, 0), at: 3 * time.Millisecond, verdict: Accept, state: StateEstablished},
	})
	ci := only(t, tab)
	if !ci.Assured || ci.Timeout != DefaultTimeouts().TCPEstablished {
		t.Errorf("assured %v timeout %v, want assured with the established timeout", ci.Assured, ci.Timeout)
	}
	// Windows are enforced again: data far beyond anything the client allowed.
	r := tab.Track(seg(Reply, PA, srvISN+1+1<<30, cliISN+1, 100), t0+int64(4*time.Millisecond))
	if r.Verdict != Drop || r.Reason != reason.OutOfWindow {
		t.Errorf("wild segment after pickup ended: %v/%v, want drop/out_of_window", r.Verdict, r.Reason)
	}
}

// Strict mode never picks up, and a reply-side create outside loose TCP is refused.
func TestReplyPickupOnlyInLooseTCP(t *testing.T) {
	strict := strictTable()
	if r := strict.Track(seg(Reply, SA, srvISN, cliISN+1, 0), t0); r.Verdict != Drop || r.Reason != reason.HandshakeNotCompleted {
		t.Errorf("strict SYN-ACK: %v/%v", r.Verdict, r.Reason)
	}
	if r := strict.CreateAs(seg(Reply, PA, srvISN, cliISN, 10), t0, Meta{}, Reply); r.Verdict != Drop || r.Reason != reason.InvalidState {
		t.Errorf("strict CreateAs reply: %v/%v", r.Verdict, r.Reason)
	}
	loose := looseTable()
	if r := loose.CreateAs(udp(srvAddr, cliAddr, 53, 5353, 10), t0, Meta{}, Reply); r.Verdict != Drop || r.Reason != reason.InvalidState {
		t.Errorf("UDP CreateAs reply: %v/%v", r.Verdict, r.Reason)
	}
	if loose.Len() != 0 || strict.Len() != 0 {
		t.Errorf("refused creates left entries: %d, %d", loose.Len(), strict.Len())
	}
}
