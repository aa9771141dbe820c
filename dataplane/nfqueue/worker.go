//go:build linux

package nfqueue

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"keepstate/conntrack"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
)

// Sizes of the receive path. copyRange is how much of each packet the kernel copies
// to us: every header the engine reads (IPv6 extension chains and ICMP quotes
// included) and whole packets at the usual MTU, so drop captures and ICMP quotes
// are complete; a GSO super-packet of 64 KiB is cut, which is what makes taking
// it whole cheap. A receive slot holds one message: the packet and its attributes.
const (
	copyRange = 2048
	slotSize  = copyRange + 1024
	batchSize = 64
	// queueMaxLen packets may wait in the kernel per queue: enough to ride out
	// a worker that is not scheduled for a few milliseconds at small-packet rates
	// (4096 overflowed on a loaded 2-core machine). A message takes about 1 KiB of
	// socket memory for a small packet and 4 KiB for a cut GSO packet: the receive
	// buffer holds a full queue of the first kind and most of one of the second;
	// past it the kernel counts user_dropped.
	queueMaxLen = 8192
	rcvBuf      = 32 << 20
)

// Answers to Deny rules are limited per worker, so that a flood of refused
// packets with forged sources does not turn the firewall into a reflector.
const (
	answersPerSecond = 1000
	answerBurst      = 200
)

// worker reads one queue: a batch of packets, one engine decision each, one
// write of verdicts for the batch.
type worker struct {
	c    *conn
	eng  *firewall.Engine
	rep  *dataplane.Reporter
	ans  *answerSockets
	ifs  *ifaceMap
	stat *queueCounters
	fast FastPath // nil: none

	batch    *recvBatch
	verdicts []byte
	answer   []byte
	m        packetMsg

	// Packets received are decided in engine batches (see firewall.Batch); ids
	// holds their packet ids. Their payloads stay in the receive buffers until
	// the next receive.
	pending *firewall.Batch
	ids     [firewall.BatchSize]uint32
	inDevs  [firewall.BatchSize]uint32

	// The verdicts of the receive batch being served: how many packets were
	// accepted, and the id of the last one.
	accepted   int
	lastAccept uint32

	tokens     float64 // answer rate limiter
	tokensTime int64
}

func newWorker(c *conn, eng *firewall.Engine, rep *dataplane.Reporter, ans *answerSockets, ifs *ifaceMap) *worker {
	return &worker{
		c: c, eng: eng, rep: rep, ans: ans, ifs: ifs,
		stat:     new(queueCounters),
		batch:    newRecvBatch(batchSize, slotSize),
		pending:  new(firewall.Batch),
		verdicts: make([]byte, 0, (batchSize+len(c.early)+1)*verdictMsgLen),
		answer:   make([]byte, 0, 2048),
		tokens:   answerBurst,
	}
}

// errRecvFailing ends a worker whose socket keeps failing.
var errRecvFailing = errors.New("nfqueue: receive keeps failing")

// run serves the queue until the socket is closed or its read deadline passes
// (Close, or the Start context ending). It returns nil then, and an error only
// when the socket keeps failing.
func (w *worker) run() error {
	if len(w.c.early) > 0 {
		// Packets that arrived before the queue was ready: never decided, so
		// dropped (TCP retransmits them).
		for _, id := range w.c.early {
			w.verdicts = appendVerdict(w.verdicts, w.c.queue, id, nfDrop, false)
			w.stat.packets.Add(1)
			w.stat.dropped.Add(1)
		}
		w.flush()
	}
	failures := 0
	for {
		n, err := w.c.recvBatch(w.batch)
		if err != nil {
			switch {
			case w.c.isClosed(), errors.Is(err, os.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
				return nil
			case errors.Is(err, unix.ENOBUFS):
				w.stat.socketOverflows.Add(1)
				continue
			case errors.Is(err, unix.EINTR):
				continue
			}
			w.stat.netlinkErrors.Add(1)
			if failures++; failures > 100 {
				return errors.Join(errRecvFailing, err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		failures = 0
		w.serve(n)
	}
}

// serve decides the n datagrams just received and sends their verdicts: the
// drops one by one, then one batch verdict accepting every other packet. Drops
// go first because the batch verdict covers every packet still queued up to its id.
func (w *worker) serve(n int) {
	start := time.Now()
	now := start.UnixNano()
	w.stat.batches.Add(1)
	w.verdicts = w.verdicts[:0]
	// Ids grow in the order packets are queued, and the kernel compares them
	// wrap-safe: the last accepted id covers every accepted packet of the batch.
	w.accepted, w.lastAccept = 0, 0
	decided := 0
	for i := 0; i < n; i++ {
		d, cut := w.batch.datagram(i)
		if cut {
			w.stat.netlinkErrors.Add(1)
		}
		for {
			m, rest, ok, err := nextMsg(d)
			if err != nil {
				w.stat.netlinkErrors.Add(1)
			}
			if !ok {
				break
			}
			d = rest
			switch m.Type {
			case msgPacket:
				decided++
				w.add(m.Body, now)
			case nlmsgError:
				// Verdicts ask for no acknowledgement: an error answer is a
				// verdict the kernel refused (an unknown packet id).
				if code, _ := errorCode(m.Body); code != 0 {
					w.stat.netlinkErrors.Add(1)
				}
			}
		}
	}
	w.decidePending(now)
	if w.accepted > 0 {
		w.verdicts = appendVerdict(w.verdicts, w.c.queue, w.lastAccept, nfAccept, true)
	}
	if decided > 0 {
		// Held time ends when the verdicts go to the kernel; the write then
		// also carries the packets on through the kernel's forwarding path,
		// which is the kernel's work, not waiting for keepstate.
		w.stat.observeLatency(time.Since(start), decided)
	}
	w.flush()
}

// add queues one packet message for the engine, deciding the queue when it is
// full. A message that does not parse is dropped at once.
func (w *worker) add(body []byte, now int64) {
	m := &w.m
	err := parsePacket(body, m)
	w.stat.packets.Add(1)
	if err != nil {
		w.stat.netlinkErrors.Add(1)
		if m.HasID {
			w.stat.dropped.Add(1)
			w.verdicts = appendVerdict(w.verdicts, w.c.queue, m.ID, nfDrop, false)
		}
		return
	}
	if m.GSO {
		w.stat.gso.Add(1)
	}
	w.ids[w.pending.Len()] = m.ID
	w.inDevs[w.pending.Len()] = m.InDev
	// CapLen, set when the copy range cut the packet, tells an offloaded (BIG
	// TCP) super-packet, whose IP length field is 0, its size; 0 means whole.
	w.pending.AddCut(m.Payload, int(m.CapLen), packet.LinkRaw, w.ifs.ingress(m.InDev, now), now)
	if w.pending.Full() {
		w.decidePending(now)
	}
}

// decidePending runs the queued packets through the engine, in order, and
// appends a verdict for each drop; accepted packets wait for the batch verdict.
func (w *worker) decidePending(now int64) {
	b := w.pending
	if b.Len() == 0 {
		return
	}
	w.eng.DecideBatch(b)
	for j := range b.Len() {
		p, d, frame := &b.Packets[j], &b.Decisions[j], b.Frame(j)
		if w.rep != nil {
			w.rep.Packet(now, frame, packet.LinkRaw, p, d)
		}
		switch d.Action {
		case firewall.Accept:
			w.stat.accepted.Add(1)
			w.accepted++
			w.lastAccept = w.ids[j]
			if w.fast != nil && !d.LogPackets && (d.Conn.State == conntrack.StateEstablished || d.Conn.State == conntrack.StateUDPReplied) {
				w.fast.Offer(p, d.Conn.Dir, w.inDevs[j], now)
			}
			continue
		case firewall.Reject:
			w.stat.rejected.Add(1)
			w.refuse(p, frame, now)
		default:
			w.stat.dropped.Add(1)
		}
		w.verdicts = appendVerdict(w.verdicts, w.c.queue, w.ids[j], nfDrop, false)
	}
	b.Reset()
}

// refuse answers packet p, decoded from frame, if allowed.
func (w *worker) refuse(p *packet.Parsed, frame []byte, now int64) {
	var ok bool
	w.answer, ok = appendAnswer(w.answer[:0], p, frame)
	if !ok {
		return
	}
	if !w.takeToken(now) {
		w.stat.answersLimited.Add(1)
		return
	}
	if err := w.ans.send(w.answer, p.Src); err != nil {
		w.stat.answerErrors.Add(1)
		return
	}
	w.stat.answers.Add(1)
}

func (w *worker) takeToken(now int64) bool {
	if w.tokensTime != 0 {
		w.tokens = min(answerBurst, w.tokens+float64(now-w.tokensTime)*answersPerSecond/1e9)
	}
	w.tokensTime = now
	if w.tokens < 1 {
		return false
	}
	w.tokens--
	return true
}

// flush sends the pending verdicts in one datagram.
func (w *worker) flush() {
	if len(w.verdicts) == 0 {
		return
	}
	w.stat.verdictMessages.Add(uint64(len(w.verdicts) / verdictMsgLen))
	if err := w.c.send(w.verdicts); err != nil {
		w.stat.netlinkErrors.Add(1)
	}
	w.verdicts = w.verdicts[:0]
}
