package synth

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// WriteTrafficLoss is WriteTrafficEvery on a link that loses packets, as TCP
// lives with it. A data segment is lost with probability loss, half the time
// before the firewall (the capture misses it; its receiver keeps acknowledging
// what came before it, duplicate ACKs, until it is retransmitted) and half the
// time after (the capture has it; the retransmission comes again). Retransmissions
// follow a few of the flow's packets later. The handshakes and teardowns are
// spared: what is left is the loss of an ordinary busy network, which must not
// look like a fault. The same seed (t.Seed) gives the same capture.
func WriteTrafficLoss(w io.Writer, t *Traffic, start time.Time, step time.Duration, loss float64) (packets int, err error) {
	pw, err := capture.NewPcapWriter(w, packet.LinkEthernet, 96, false)
	if err != nil {
		return 0, err
	}
	now := start.UnixNano()
	frame := make([]byte, 0, 160)
	write := func(ip []byte, _ int) {
		if err != nil {
			return
		}
		frame = packet.AppendEthernet(frame[:0], macA, macB, nil, ip)
		wire := len(frame) - len(ip) + int(binary.BigEndian.Uint16(ip[2:4]))
		err = pw.WritePacket(now, frame, wire)
		now += int64(step)
		packets++
	}
	t.SYNs(write)
	t.Handshakes(write)
	t.lossyData(write, loss)
	t.Teardowns(write)
	if err != nil {
		return packets, err
	}
	return packets, pw.Close()
}

// lost is a segment waiting for its retransmission.
type lost struct {
	seq   uint32
	n     int
	flags packet.TCPFlags
	after int  // the flow's packets to go before it is sent again
	seen  bool // the capture saw the original (lost after the firewall)
}

// lossyData is Data with losses: each side acknowledges only what it received in
// order, so a segment lost before the firewall is never acknowledged before its
// retransmission, as a real receiver behaves.
func (t *Traffic) lossyData(y Yield, loss float64) {
	var scratch [128]byte
	rng := rand.New(rand.NewPCG(t.Seed, t.Seed^0x9e3779b97f4a7c15))
	// rcvd[f][d]: the next sequence number side d expects from its peer.
	rcvd := make([][2]uint32, len(t.flows))
	pending := make([][2]*lost, len(t.flows))
	for i := range t.flows {
		rcvd[i] = [2]uint32{t.flows[i].next[1], t.flows[i].next[0]}
	}
	emit := func(fi, dir int, seq uint32, flags packet.TCPFlags, n int) {
		f := &t.flows[fi]
		src, dst := f.client, f.server
		if dir == 1 {
			src, dst = dst, src
		}
		spec := packet.TCPSpec{Src: src, Dst: dst, Seq: seq, Ack: rcvd[fi][dir], Flags: flags, Window: 65535}
		b := packet.AppendTCP(scratch[:0], spec)
		if n > 0 {
			binary.BigEndian.PutUint16(b[2:4], uint16(len(b)+n))
		}
		y(b, fi)
	}
	for range t.Packets {
		fi := rng.IntN(len(t.flows))
		dir, n, flags := 1, 1448, packet.ACK|packet.PSH
		switch rng.IntN(4) {
		case 0:
			dir, n = 0, 200
		case 1:
			dir, n, flags = 0, 0, packet.ACK
		}
		f := &t.flows[fi]
		// A retransmission due on this side goes first.
		if p := pending[fi][dir]; p != nil {
			if p.after--; p.after <= 0 {
				emit(fi, dir, p.seq, p.flags, p.n)
				rcvd[fi][1-dir] = f.next[dir]
				pending[fi][dir] = nil
				continue
			}
		}
		seq := f.next[dir]
		f.next[dir] += uint32(n)
		switch r := rng.Float64(); {
		case n > 0 && pending[fi][dir] == nil && r < loss:
			p := &lost{seq: seq, n: n, flags: flags, after: 2 + rng.IntN(4), seen: r < loss/2}
			pending[fi][dir] = p
			if p.seen {
				emit(fi, dir, seq, flags, n) // lost after the firewall
			}
		default:
			emit(fi, dir, seq, flags, n)
			if pending[fi][dir] == nil {
				rcvd[fi][1-dir] = f.next[dir]
			}
		}
	}
	// Whatever is still lost is retransmitted before the flows close.
	for fi := range pending {
		for dir, p := range pending[fi] {
			if p != nil {
				emit(fi, dir, p.seq, p.flags, p.n)
				rcvd[fi][1-dir] = t.flows[fi].next[dir]
			}
		}
	}
}
