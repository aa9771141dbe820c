package conntrack

import (
	"strings"
	"testing"

	"keepstate/packet"
	"keepstate/reason"
)

// linuxTable is Linux's tcp_conntracks (Linux 6.x), transcribed as text: per direction and flag
// class, the next state from sNO sSS sSR sES sFW sCW sLA sTW sCL sS2.
var linuxTable = map[string]string{
	"orig syn":     "SS SS IG IG IG IG IG SS SS S2",
	"orig synack":  "IV IV SR IV IV IV IV IV IV SR",
	"orig fin":     "IV IV FW FW LA LA LA TW CL IV",
	"orig ack":     "ES IV ES ES CW CW TW TW CL IV",
	"orig rst":     "IV CL CL CL CL CL CL CL CL CL",
	"reply syn":    "IV S2 IV IV IV IV IV SS IV S2",
	"reply synack": "IV SR IG IG IG IG IG IG IG SR",
	"reply fin":    "IV IV FW FW LA LA LA TW CL IV",
	"reply ack":    "IV IG SR ES CW CW TW TW CL IG",
	"reply rst":    "IV CL CL CL CL CL CL CL CL CL",
}

var shortState = map[string]State{
	"NO": StateNone, "SS": StateSynSent, "SR": StateSynRecv, "ES": StateEstablished,
	"FW": StateFinWait, "CW": StateCloseWait, "LA": StateLastAck, "TW": StateTimeWait,
	"CL": StateClose, "S2": StateSynSent2,
}

var flagsOf = map[string]packet.TCPFlags{"syn": S, "synack": SA, "fin": FA, "ack": A, "rst": R}

// TestEveryTransition drives every cell of the table through Track, on an entry
// forced into the state with liberal windows so that only the state machine decides.
// sIG must pass without a state change, sIV must drop (handshake states with
// HandshakeWrongDirection), a SYN that Linux lets reopen the tuple (SS on
// TIME_WAIT or CLOSE) must end the old entry.
func TestEveryTransition(t *testing.T) {
	cols := strings.Fields("NO SS SR ES FW CW LA TW CL S2")
	for row, cells := range linuxTable {
		dirName, class, _ := strings.Cut(row, " ")
		dir := Original
		if dirName == "reply" {
			dir = Reply
		}
		for c, want := range strings.Fields(cells) {
			from := shortState[cols[c]]
			if from == StateNone {
				continue // no entry: the miss path, tested in TestTCPScenarios
			}
			for _, strict := range []bool{false, true} {
				tab := New(Config{Strict: strict})
				tab.Create(seg(Original, S, cliISN, 0, 0), t0, Meta{})
				e := onlyEntry(t, tab)
				sh := tab.shards[tab.shardOf(e.key.hash(&tab.seed)).num]
				cls := e.class()
				i := sh.lists[cls].head
				sh.unlinkLocked(cls, i)
				e.setState(from)
				e.set(fLiberal | fSeenReply)
				sh.pushBackLocked(e.class(), i)

				r := tab.Track(seg(dir, flagsOf[class], cliISN+1, srvISN+1, 0), t0+1)
				name := row + " in " + from.String()
				switch {
				case class == "syn" && want == "SS" && (from == StateTimeWait || from == StateClose):
					if r.Verdict != NewConn || tab.Len() != 0 {
						t.Errorf("%s: %+v, want the old entry ended and new", name, r)
					}
				case want == "IV":
					wantReason := reason.InvalidState
					if inHandshake(from) {
						wantReason = reason.HandshakeWrongDirection
					}
					if r.Verdict != Drop || r.Reason != wantReason {
						t.Errorf("%s: %v/%v, want drop/%v", name, r.Verdict, r.Reason, wantReason)
					}
				case want == "IG":
					if r.Verdict != Accept || r.State != from {
						t.Errorf("%s: %v in %v, want ignored (accept, unchanged)", name, r.Verdict, r.State)
					}
				default:
					if r.Verdict != Accept || r.State != shortState[want] {
						t.Errorf("%s: %v/%v in %v, want accept in %v", name, r.Verdict, r.Reason, r.State, shortState[want])
					}
				}
				checkInvariants(t, tab)
			}
		}
	}
}
