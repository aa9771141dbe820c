package conntrack

import (
	"keepstate/packet"
)

// TCP flag classes, the rows of the transition table. A packet is classified by its
// most significant control flag: RST, then SYN (with or without ACK), FIN, ACK.
const (
	fcSyn = iota
	fcSynAck
	fcFin
	fcAck
	fcRst
	fcNone
	numFlagClasses
)

func flagClass(f packet.TCPFlags) int {
	switch {
	case f&packet.RST != 0:
		return fcRst
	case f&packet.SYN != 0:
		if f&packet.ACK != 0 {
			return fcSynAck
		}
		return fcSyn
	case f&packet.FIN != 0:
		return fcFin
	case f&packet.ACK != 0:
		return fcAck
	}
	return fcNone
}

// validFlags reports whether f, ignoring PSH, ECE and CWR (always allowed), is a
// combination real TCP stacks send: no flags, SYN+FIN, SYN+RST, FIN without ACK and
// the like are scans or attacks.
func validFlags(f packet.TCPFlags) bool {
	const (
		syn, ack, fin, rst, urg = packet.SYN, packet.ACK, packet.FIN, packet.RST, packet.URG
	)
	switch f &^ (packet.PSH | packet.ECE | packet.CWR) {
	case syn, syn | urg, syn | ack, rst, rst | ack, fin | ack, fin | ack | urg, ack, ack | urg:
		return true
	}
	return false
}

// Pseudo-states of the transition table.
const (
	sIV = 0xfe // invalid: drop
	sIG = 0xff // ignore: pass without changing state or refreshing the timer
)

// Short names so the table below reads as a table.
const (
	sNO = uint8(StateNone)
	sSS = uint8(StateSynSent)
	sSR = uint8(StateSynRecv)
	sES = uint8(StateEstablished)
	sFW = uint8(StateFinWait)
	sCW = uint8(StateCloseWait)
	sLA = uint8(StateLastAck)
	sTW = uint8(StateTimeWait)
	sCL = uint8(StateClose)
	sS2 = uint8(StateSynSent2)
)

// tcpNext[dir][flag class][state] is the state after a packet, as in Linux's
// tcp_conntracks (as of Linux 6.x). The firewall sits in the middle and guesses
// each side's state from what it sees; packets it cannot place but that an end
// host may legitimately answer (a SYN on an established tuple, a retransmitted
// SYN-ACK, an ACK answering a SYN with a challenge) are ignored rather than
// dropped, so the end hosts can resynchronise with a RST.
var tcpNext = [2][numFlagClasses][sS2 + 1]uint8{
	Original: {
		//         sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
		fcSyn:    {sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2}, // TW/CL: reopen
		fcSynAck: {sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR}, // SR: simultaneous open's SYN-ACK again
		fcFin:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV}, // SS: wait for the SYN-ACK first
		fcAck:    {sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV}, // SR->ES: handshake done
		fcRst:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		fcNone:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
	Reply: {
		//         sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
		fcSyn:    {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2}, // SS: simultaneous open; TW: reopen the other way round
		fcSynAck: {sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR}, // SS->SR: normal open
		fcFin:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		fcAck:    {sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG}, // SS: a challenge ACK (RFC 5961 4.2)? ignore
		fcRst:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		fcNone:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
}

// reopens reports whether a packet of flag class fc travelling in direction dir on
// a connection in state old opens a new connection on its tuple: a SYN after the
// connection closed (RFC 1122 4.2.2.13), in TIME_WAIT also from the side that
// answered the first time (the roles may switch, as Linux allows).
func reopens(fc int, dir Dir, old State) bool {
	return fc == fcSyn && (old == StateTimeWait || old == StateClose) && tcpNext[dir][fc][old] == sSS
}

func inHandshake(s State) bool {
	return s == StateSynSent || s == StateSynSent2 || s == StateSynRecv
}

// segEnd is the sequence number after the segment: SYN and FIN count as one byte.
func segEnd(p *packet.Parsed) uint32 {
	end := p.Seq + uint32(p.PayloadLen)
	if p.TCPFlags&packet.SYN != 0 {
		end++
	}
	if p.TCPFlags&packet.FIN != 0 {
		end++
	}
	return end
}

// Sequence-space comparisons, modulo 2^32.
func before(a, b uint32) bool { return int32(a-b) < 0 }
func after(a, b uint32) bool  { return int32(b-a) < 0 }

// maxAckWindow is the least slack allowed below the receiver's end for an ack
// (Linux's MAXACKWINCONST): acks may lag by a full unscaled window and some.
const maxAckWindow = 66000

// synOptions records a SYN's window scale and SACK-permitted options for direction d.
func (e *entry) synOptions(d Dir, p *packet.Parsed) {
	f := e.dflags[d] & (dfDataAck | dfUnacked)
	if p.TCPOpts.HasWScale {
		f |= dfWScale | min(p.TCPOpts.WScale, 14) // RFC 7323: shift at most 14
	}
	if p.TCPOpts.SACKPermitted {
		f |= dfSACK
	}
	e.dflags[d] = f
}

// initSyn initialises the sender's window from a SYN or SYN-ACK.
func (e *entry) initSyn(d Dir, p *packet.Parsed, end uint32) {
	e.tcp[d] = tcpDir{end: end, maxend: end, maxwin: max(uint32(p.Window), 1)}
	e.synOptions(d, p)
}

// windowVerdict is inWindow's answer.
type windowVerdict uint8

const (
	windowOK      windowVerdict = iota // in the window: the window state was advanced
	windowIgnore                       // passes, changing nothing but what windowIgnore's cases say
	windowInvalid                      // out of the window: drop
)

// inWindow checks p against the four bounds and, when it passes (or the connection's
// windows are not enforced), advances the window state.
//
// For sender s and receiver r:
//
//	I   seq <= s.maxend                       (not beyond what the receiver allowed)
//	II  end >= s.end - r.maxwin               (not older than a receiver window)
//	III sack <= r.end                         (acks nothing the receiver has not sent)
//	IV  sack >= r.end - max(s.maxwin, 66000)  (acks nothing too old)
//
// where sack is the highest SACK right edge, or the ack. Bound IV uses the sender's
// maxwin, as Linux does: how far an ack may lag is bounded by the window the acking
// side itself advertised.
//
// As in Linux (tcp_in_window), only a segment beyond the window (I) or an ack of
// data never seen (III) is invalid. A segment older than the window (II) or an ack
// older than the ack window (IV) is a late retransmission or a delayed ack: the
// receiver discards it, so it passes but changes nothing (windowIgnore). And a
// segment beyond the window by no more than one receiver window, with acceptable
// acks, is data the receiver did allow in a window update the firewall never saw
// (lost before it, or missing from a capture): it passes too, and its end becomes
// the sender's end, so that the receiver's acknowledgement of it, which carries the
// window update, passes and brings the window state back in step. Without that, the
// firewall would drop that data, then every ack of it as acking data never sent,
// and so on to the end of the connection.
func (e *entry) inWindow(d Dir, p *packet.Parsed, old State) windowVerdict {
	s, r := &e.tcp[d], &e.tcp[1-d]
	flags := p.TCPFlags
	seq, ack := p.Seq, p.Ack
	end := segEnd(p)
	win := uint32(p.Window)
	sack := ack
	if e.dflags[1-d]&dfSACK != 0 || e.has(fLiberal) {
		for _, b := range p.TCPOpts.SACK[:min(int(p.TCPOpts.NumSACK), len(p.TCPOpts.SACK))] {
			if after(b.Right, sack) {
				sack = b.Right
			}
		}
	}

	// A relearning connection's RST or FIN is checked, never taken on trust
	// (see relearn.go): a side not seen since the takeover is where the other
	// side's acknowledgements put it.
	checked := e.relearning() && flags&(packet.RST|packet.FIN) != 0
	if s.maxwin == 0 && !checked {
		// First packet from this side.
		if flags&packet.SYN != 0 {
			// SYN-ACK answering the SYN, or the reply's SYN of a simultaneous open.
			e.initSyn(d, p, end)
			// RFC 7323: scaling is in force only if both SYNs carried the option.
			if e.dflags[d]&e.dflags[1-d]&dfWScale == 0 {
				e.dflags[d] &^= 0x0f
				e.dflags[1-d] &^= 0x0f
			}
			if flags&packet.ACK == 0 {
				return windowOK
			}
		} else {
			// Mid-stream: take what the packet says.
			w := max(win<<e.scale(d), 1)
			*s = tcpDir{end: end, maxend: end + w, maxwin: w}
			if r.maxwin == 0 {
				r.end, r.maxend = sack, sack
			}
		}
	} else if flags&packet.SYN != 0 &&
		((old == StateSynSent && d == Original) || (old == StateSynRecv && d == Reply)) &&
		after(end, s.end) {
		// A new SYN (or SYN-ACK) with a higher sequence number: the host restarted
		// the attempt (RFC 793 "use sequence numbers larger than those recently
		// used"); start over from it.
		e.initSyn(d, p, end)
	}

	if flags&packet.ACK == 0 || (flags&packet.RST != 0 && ack == 0) {
		// No ack to check (or a broken stack's RST+ACK with ack 0): pretend it
		// acked exactly what the receiver sent.
		ack, sack = r.end, r.end
	}
	if flags&packet.RST != 0 && seq == 0 && old == StateSynSent {
		// The seq-0 RST that answers a SYN.
		seq, end = s.end, s.end
	}

	enforced := (!e.has(fLiberal) || checked) && !e.windowsGuessed()
	ackFloor := r.end - max(s.maxwin, maxAckWindow)
	inRecvWindow := r.maxwin == 0 || !before(end, s.end-r.maxwin)
	switch {
	case !enforced:
	case after(seq, s.maxend):
		if r.maxwin != 0 && inRecvWindow && end-s.maxend+1 <= r.maxwin &&
			!before(sack, ackFloor) && !after(sack, r.end) {
			s.end = end
			e.dflags[d] |= dfUnacked
			return windowIgnore
		}
		return windowInvalid
	case after(sack, r.end):
		return windowInvalid
	case !inRecvWindow, before(sack, ackFloor):
		return windowIgnore
	}

	if flags&packet.SYN == 0 {
		win <<= e.scale(d)
	}
	if swin := win + (sack - ack); s.maxwin < swin {
		s.maxwin = swin
	}
	if after(end, s.end) {
		s.end = end
		e.dflags[d] |= dfUnacked
	}
	if flags&packet.ACK != 0 {
		e.dflags[d] |= dfDataAck
		if !before(ack, r.end) {
			e.dflags[1-d] &^= dfUnacked
		}
	}
	// Data beyond what the receiver allowed (possible only when liberal or in the
	// boundary case) widens the receiver's window estimate.
	if r.maxwin != 0 && after(end, s.maxend) {
		r.maxwin += end - s.maxend
	}
	if after(sack+win, r.maxend-1) {
		r.maxend = sack + win
		if win == 0 {
			r.maxend++
		}
	}
	return windowOK
}

// windowsGuessed reports whether e's window state is a guess for its whole life:
// the connection was picked up mid-stream, so neither SYN and its window scale was
// seen, and the largest scale was assumed without the dfWScale flag that a SYN
// sets, a combination no handshake produces. Its windows are not enforced even
// after both directions have been seen, as Linux keeps a picked-up connection
// liberal (IP_CT_TCP_FLAG_BE_LIBERAL) for good: with an assumed scale the
// sequence bounds mean little, and the bound that would still bite, an ack of
// data the firewall never saw, bites on every gap in what it saw (a capture's lost
// packets, a path that carried some packets around it) and then on every later
// packet, while a receiver itself ignores such an ack.
func (e *entry) windowsGuessed() bool {
	return e.dflags[Original]&(dfWScale|0x0f) == pickupScale
}

// pickupScale is the window scale a connection picked up mid-stream assumes on
// both sides: the largest, without the flag that says a SYN carried it.
const pickupScale = 14

// quotedSeqPlausible reports whether seq, quoted in an ICMP error about a segment
// sent in direction d, lies within what that side may have in flight: not beyond
// the highest sequence it sent, nor older than one receiver window before it.
// Picked-up connections, whose windows are guesses, accept any.
func (e *entry) quotedSeqPlausible(d Dir, seq uint32) bool {
	s, r := &e.tcp[d], &e.tcp[1-d]
	if e.has(fLiberal) || e.windowsGuessed() || s.maxwin == 0 {
		return true
	}
	return !after(seq, s.end) && !before(seq, s.end-max(r.maxwin, maxAckWindow))
}
