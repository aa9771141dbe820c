package diagnose

import (
	"fmt"
	"time"
)

// dirView is one direction of a connection, with the words the verdicts use for it.
type dirView struct {
	noun   string // "requests" or "replies"
	flow   string // "10.1.0.2:41234 -> 10.2.0.2:8080"
	target string // whom they are for: "server" or "client"
	d      *DirDiff
	// acks: packets of this direction acknowledge the other's (TCP ACK), or, for
	// replies of other protocols, answer a request: proof that the other direction
	// reached this one's sender even where no capture saw it.
	acks bool
}

func (v *dirView) on(side string) bool {
	if side == "A" {
		return v.d.OnA > 0
	}
	return v.d.OnB > 0
}

func (v *dirView) seen() bool { return v.d.OnA+v.d.OnB > 0 }

func (v *dirView) evidence() string {
	d := v.d
	if !v.seen() {
		return v.noun + ": none on either side"
	}
	return fmt.Sprintf("%s: %d on A%s, %d on B%s, %d crossed", v.noun,
		d.OnA, span(d.FirstA, d.LastA), d.OnB, span(d.FirstB, d.LastB), d.Crossed)
}

func span(first, last time.Time) string {
	if first.IsZero() {
		return ""
	}
	if first.Equal(last) {
		return " at " + clock(first)
	}
	return fmt.Sprintf(" from %s to %s", clock(first), clock(last))
}

// clock formats a capture time to the millisecond, the precision verdicts need.
func clock(t time.Time) string { return t.Format("15:04:05.000") }

func otherSide(s string) string {
	if s == "A" {
		return "B"
	}
	return "A"
}

// judge classifies a connection and says why in one sentence with its evidence.
// acks says, per direction (requests, replies), whether a packet acknowledged data;
// repliesProve is true when a reply by itself proves a request was sent (UDP, ICMP).
func judge(cd *ConnDiff, dev string, acks [2]bool, repliesProve bool) (status, verdict string) {
	req := &dirView{noun: "requests", flow: cd.Client + " -> " + cd.Server, target: "server", d: &cd.Requests, acks: acks[0]}
	rep := &dirView{noun: "replies", flow: cd.Server + " -> " + cd.Client, target: "client", d: &cd.Replies, acks: acks[1] || repliesProve}
	evidence := fmt.Sprintf(" (%s; %s)", req.evidence(), rep.evidence())

	// Replies first: the common case reads "replies cross but the requests never do".
	for _, xy := range [][2]*dirView{{rep, req}, {req, rep}} {
		x, y := xy[0], xy[1]
		for _, side := range []string{"A", "B"} {
			// x's acknowledgements on this side prove that y reached x's sender, yet
			// y never passed here: it travels another way. Without that proof a
			// missing direction is only unanswered or dropped.
			if x.on(side) && !y.on(side) && x.acks {
				return StatusAsymmetric, asymmetricText(x, y, side, dev) + evidence
			}
		}
	}

	total := cd.Requests.OnA + cd.Requests.OnB - cd.Requests.Crossed + cd.Replies.OnA + cd.Replies.OnB - cd.Replies.Crossed
	crossed := cd.Requests.Crossed + cd.Replies.Crossed
	onlyA := cd.Requests.OnlyA + cd.Replies.OnlyA
	onlyB := cd.Requests.OnlyB + cd.Replies.OnlyB
	switch {
	case crossed == total:
		if !req.seen() || !rep.seen() {
			return StatusClean, fmt.Sprintf("all %d packets crossed %s; one direction only, no answer seen", total, dev) + evidence
		}
		return StatusClean, fmt.Sprintf("all %d packets crossed %s, both ways", total, dev) + evidence
	case crossed == 0:
		side := "A"
		if onlyB > 0 {
			side = "B"
		}
		return StatusOneSided, fmt.Sprintf("all %d packets were seen only on %s: nothing crossed %s", total, side, dev) + evidence
	}
	return StatusLossy, fmt.Sprintf("%d of %d packets did not cross %s: %d seen only on A, %d only on B", total-crossed, total, dev, onlyA, onlyB) + evidence
}

// asymmetricText words the case where direction x is seen on side while y never is.
func asymmetricText(x, y *dirView, side, dev string) string {
	other := otherSide(side)
	switch {
	case !y.seen() && x.on(other):
		return fmt.Sprintf("%s %s cross %s but the %s never do: they reach the %s another way", x.flow, x.noun, dev, y.noun, y.target)
	case !y.seen():
		return fmt.Sprintf("%s %s are seen only on %s and never cross %s, and the %s are seen on neither side: they reach the %s another way",
			x.flow, x.noun, side, dev, y.noun, y.target)
	}
	return fmt.Sprintf("%s %s are seen on %s but never on %s, where the %s are: they take another path to the %s",
		y.flow, y.noun, other, side, x.noun, y.target)
}
