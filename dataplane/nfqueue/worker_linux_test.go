//go:build linux

package nfqueue

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"keepstate/packet"
	"keepstate/synth"
)

// pairConn is a conn whose verdicts land in the other end of a socket pair.
func pairConn(t *testing.T, queue uint16) (*conn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "worker-side")
	peer := os.NewFile(uintptr(fds[1]), "kernel-side")
	t.Cleanup(func() { f.Close(); peer.Close() })
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return &conn{queue: queue, file: f, raw: raw}, peer
}

type sentVerdict struct {
	batch   bool
	verdict uint32
	id      uint32
	queue   uint16
}

func readVerdicts(t *testing.T, peer *os.File) []sentVerdict {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var out []sentVerdict
	d := buf[:n]
	for {
		m, rest, ok, err := nextMsg(d)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		d = rest
		// nfgenmsg, then NFQA_VERDICT_HDR
		if len(m.Body) != nfgenLen+nlaHdrLen+8 || m.Flags != nlmFRequest {
			t.Fatalf("verdict message body %x flags %#x", m.Body, m.Flags)
		}
		v := m.Body[nfgenLen+nlaHdrLen:]
		out = append(out, sentVerdict{
			batch:   m.Type == msgVerdictBatch,
			verdict: binary.BigEndian.Uint32(v[0:4]),
			id:      binary.BigEndian.Uint32(v[4:8]),
			queue:   binary.BigEndian.Uint16(m.Body[2:4]),
		})
	}
	return out
}

// servingWorker is a worker on queue 6 of the lab engine, its verdicts landing in
// the returned end of a socket pair.
func servingWorker(t *testing.T) (*worker, *os.File) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	c, peer := pairConn(t, 6)
	eng := labEngine(t)
	return newWorker(c, eng, nil, nil, newIfaceMap(eng, fd)), peer
}

// serveDatagrams has w serve the datagrams as one receive batch.
func serveDatagrams(w *worker, datagrams [][]byte) {
	for i, d := range datagrams {
		copy(w.batch.bufs[i], d)
		w.batch.msgs[i].len = uint32(len(d))
	}
	w.serve(len(datagrams))
}

// A batch of accepted and dropped packets: every drop is sent on its own first,
// then one batch verdict accepts the rest up to the last accepted id.
func TestServeSendsDropsThenOneBatchAccept(t *testing.T) {
	w, peer := servingWorker(t)

	cli := netip.MustParseAddrPort("198.18.1.2:40000")
	syn := func(port uint16) []byte {
		return packet.AppendTCP(nil, packet.TCPSpec{Src: cli, Dst: netip.AddrPortFrom(netip.MustParseAddr("198.18.2.2"), port), Flags: packet.SYN, Seq: 1, Window: 100})
	}
	datagrams := [][]byte{
		kernelPacketMsg(100, 2, 0, 0, syn(portPermit), 0, 0),
		kernelPacketMsg(101, 2, 0, 0, syn(portDrop), 0, 0),
		kernelPacketMsg(102, 2, 0, 0, syn(portBulk), 0, skbInfoGSO),
		kernelPacketMsg(103, 2, 0, 0, []byte{0x45}, 0, 0), // malformed IP: dropped
		kernelPacketMsg(104, 2, 0, 0, syn(portIperf), 0, 0),
		kernelPacketMsg(105, 2, 0, 0, syn(22), 0, 0), // default rule: dropped
	}
	// An error answer of the kernel to an earlier verdict rides along.
	errMsg := appendHeader(nil, nlmsgError, 0, 0, 0, 16)
	ne.PutUint32(errMsg[nlmsgHdrLen:], uint32(0xfffffffe)) // -ENOENT over the nfgenmsg bytes
	datagrams = append(datagrams, append(errMsg, make([]byte, 12)...))
	serveDatagrams(w, datagrams)

	got := readVerdicts(t, peer)
	want := []sentVerdict{
		{false, nfDrop, 101, 6},
		{false, nfDrop, 103, 6},
		{false, nfDrop, 105, 6},
		{true, nfAccept, 104, 6},
	}
	if len(got) != len(want) {
		t.Fatalf("verdicts %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("verdict %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	s := w.stat.snapshot()
	if s.Packets != 6 || s.Accepted != 3 || s.Dropped != 3 || s.GSO != 1 || s.Batches != 1 || s.VerdictMessages != 4 || s.NetlinkErrors != 1 {
		t.Errorf("counters %+v", s)
	}
	var lat uint64
	for i := range w.stat.latency {
		lat += w.stat.latency[i].Load()
	}
	if lat != 6 {
		t.Errorf("latency histogram counted %d packets, want 6", lat)
	}
}

// Packets that arrived while the queue was configured are dropped first thing.
func TestRunDropsEarlyPackets(t *testing.T) {
	c, peer := pairConn(t, 2)
	c.early = []uint32{7, 8}
	eng := labEngine(t)
	w := newWorker(c, eng, nil, nil, nil)
	done := make(chan error, 1)
	go func() { done <- w.run() }()
	got := readVerdicts(t, peer)
	if len(got) != 2 || got[0] != (sentVerdict{false, nfDrop, 7, 2}) || got[1] != (sentVerdict{false, nfDrop, 8, 2}) {
		t.Errorf("early verdicts %+v", got)
	}
	c.close()
	if err := <-done; err != nil {
		t.Errorf("run after close: %v", err)
	}
}

// A BIG TCP super-packet (IP length 0, more than 64 KiB) comes cut to the copy
// range with its real length in NFQA_CAP_LEN: the worker passes that length on, so
// the send is tracked at its size and the acknowledgement of all of it passes.
func TestServeTracksCutBigTCPSend(t *testing.T) {
	w, peer := servingWorker(t)
	cli := netip.MustParseAddrPort("198.18.1.2:40000")
	srv := netip.AddrPortFrom(netip.MustParseAddr("198.18.2.2"), portPermit)
	var datagrams [][]byte
	for i, f := range synth.OffloadedSend(cli, srv, 150_000) {
		id := uint32(200 + i)
		if i == 3 { // the send, cut to the copy range, its length in NFQA_CAP_LEN
			datagrams = append(datagrams, kernelPacketMsg(id, 2, 0, 0, f[:copyRange], uint32(len(f)), skbInfoGSO))
			continue
		}
		datagrams = append(datagrams, kernelPacketMsg(id, 2, 0, 0, f, 0, 0))
	}
	serveDatagrams(w, datagrams)

	got := readVerdicts(t, peer)
	if want := (sentVerdict{true, nfAccept, 204, 6}); len(got) != 1 || got[0] != want {
		t.Fatalf("verdicts %+v, want only %+v", got, want)
	}
}
