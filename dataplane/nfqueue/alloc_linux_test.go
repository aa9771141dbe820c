//go:build linux

package nfqueue

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"keepstate/packet"
)

// The accept path allocates nothing per packet: message parsing, the interface
// lookup, the engine's decision and the batch bookkeeping.
func TestDecideDoesNotAllocate(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("socket: %v", err)
	}
	defer unix.Close(fd)
	eng := labEngine(t)
	w := newWorker(&conn{queue: 0}, eng, nil, nil, newIfaceMap(eng, fd))

	cli := netip.MustParseAddrPort("198.18.1.2:40000")
	srv := netip.MustParseAddrPort("198.18.2.2:8080")
	seg := func(src, dst netip.AddrPort, flags packet.TCPFlags, seq, ack uint32, data string) []byte {
		ip := packet.AppendTCP(nil, packet.TCPSpec{Src: src, Dst: dst, Flags: flags, Seq: seq, Ack: ack, Window: 65535, Payload: []byte(data)})
		d := kernelPacketMsg(1, 2, 1, 0, ip, 0, 0)
		return d[nlmsgHdrLen:]
	}
	now := int64(1e18)
	for _, b := range [][]byte{
		seg(cli, srv, packet.SYN, 100, 0, ""),
		seg(srv, cli, packet.SYN|packet.ACK, 500, 101, ""),
		seg(cli, srv, packet.ACK, 101, 501, ""),
	} {
		if !w.decideOne(b, now) {
			t.Fatalf("handshake packet not accepted")
		}
	}
	ack := seg(srv, cli, packet.ACK, 501, 101, "")
	allocs := testing.AllocsPerRun(1000, func() {
		now += 1000
		w.verdicts = w.verdicts[:0]
		if !w.decideOne(ack, now) {
			t.Fatal("established packet not accepted")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per accepted packet, want 0", allocs)
	}
}

func BenchmarkDecideEstablished(b *testing.B) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Skip(err)
	}
	defer unix.Close(fd)
	eng, _ := labEngineErr()
	w := newWorker(&conn{queue: 0}, eng, nil, nil, newIfaceMap(eng, fd))
	cli := netip.MustParseAddrPort("198.18.1.2:40000")
	srv := netip.MustParseAddrPort("198.18.2.2:8080")
	mk := func(src, dst netip.AddrPort, flags packet.TCPFlags, seq, ack uint32) []byte {
		ip := packet.AppendTCP(nil, packet.TCPSpec{Src: src, Dst: dst, Flags: flags, Seq: seq, Ack: ack, Window: 65535})
		return kernelPacketMsg(1, 2, 1, 0, ip, 0, 0)[nlmsgHdrLen:]
	}
	now := int64(1e18)
	w.decideOne(mk(cli, srv, packet.SYN, 100, 0), now)
	w.decideOne(mk(srv, cli, packet.SYN|packet.ACK, 500, 101), now)
	w.decideOne(mk(cli, srv, packet.ACK, 101, 501), now)
	ack := mk(srv, cli, packet.ACK, 501, 101)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		w.decideOne(ack, now)
	}
}

// decideOne runs one packet message through the worker's batch path on its own
// and reports whether it was accepted.
func (w *worker) decideOne(body []byte, now int64) bool {
	before := w.accepted
	w.add(body, now)
	w.decidePending(now)
	return w.accepted > before
}
