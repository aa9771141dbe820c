package packet

import (
	"runtime"
	"testing"
)

// benchFrames are the packets the allocation tests and benchmarks decode: typical
// traffic (an Ethernet data segment with timestamps, a DNS-sized datagram, echo and
// an ICMP error) over IPv4 and IPv6.
func benchFrames() []struct {
	name  string
	frame []byte
	link  LinkType
} {
	ts := TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2}
	payload := make([]byte, 100)
	return []struct {
		name  string
		frame []byte
		link  LinkType
	}{
		{"TCPv4", eth(nil, AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Flags: ACK, Options: ts, Payload: payload})), LinkEthernet},
		{"TCPv6", eth(nil, AppendTCP(nil, TCPSpec{Src: ap(v6a, 40000), Dst: ap(v6b, 80), Flags: ACK, Options: ts, Payload: payload})), LinkEthernet},
		{"TCPv4SYN", eth(nil, AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Flags: SYN, Options: TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamps: true, HasWScale: true, WScale: 7}})), LinkEthernet},
		{"TCPv4VLAN", eth([]uint16{10, 20}, AppendTCP(nil, TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Flags: ACK, Payload: payload})), LinkEthernet},
		{"UDPv4", eth(nil, udp4(payload)), LinkEthernet},
		{"UDPv6", eth(nil, udp6(payload)), LinkEthernet},
		{"ICMPv4", eth(nil, AppendICMPEcho(nil, ICMPEchoSpec{Src: v4a, Dst: v4b, ID: 1, Seq: 1, Payload: payload})), LinkEthernet},
		{"ICMPv6", eth(nil, AppendICMPEcho(nil, ICMPEchoSpec{Src: v6a, Dst: v6b, ID: 1, Seq: 1, Payload: payload})), LinkEthernet},
		{"ICMPv4Error", eth(nil, AppendICMPError(nil, 3, 3, v4b, v4a, tcp4(ACK, payload))), LinkEthernet},
		{"ICMPv6Error", eth(nil, AppendICMPError(nil, 1, 4, v6b, v6a, tcp6(ACK, payload))), LinkEthernet},
		{"SLL2UDPv4", AppendSLL2(nil, 3, PacketHost, macA, udp4(payload)), LinkLinuxSLL2},
		{"RawTCPv4", tcp4(ACK, payload), LinkRaw},
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	var p Parsed
	for _, f := range benchFrames() {
		if err := p.Decode(f.frame, f.link); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if err := p.VerifyChecksums(f.frame); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Decode(f.frame, f.link) }); n != 0 {
			t.Errorf("%s: Decode allocates %v times", f.name, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.VerifyChecksums(f.frame) }); n != 0 {
			t.Errorf("%s: VerifyChecksums allocates %v times", f.name, n)
		}
	}
	// Errors must not allocate either: hostile traffic is all errors.
	var sink error
	for _, c := range errorCases() {
		if n := testing.AllocsPerRun(50, func() { sink = p.Decode(c.frame, c.link) }); n != 0 {
			t.Errorf("%s: Decode error path allocates %v times", c.name, n)
		}
	}
	bad := tcp4(ACK, []byte("x"))
	bad[len(bad)-1] ^= 1
	_ = p.Decode(bad, LinkRaw)
	if n := testing.AllocsPerRun(50, func() { sink = p.VerifyChecksums(bad) }); n != 0 || sink != ErrBadTCPChecksum {
		t.Errorf("bad checksum path: %v allocations, error %v", n, sink)
	}
}

// BenchmarkDecode reports, besides ns/op, cpu-ns/op: the CPU time of the benchmark
// thread per decode, which stays honest on a machine busy with other work.
func BenchmarkDecode(b *testing.B) {
	for _, f := range benchFrames() {
		b.Run(f.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var p Parsed
			b.ReportAllocs()
			b.SetBytes(int64(len(f.frame)))
			start := threadCPUTime()
			for b.Loop() {
				if err := p.Decode(f.frame, f.link); err != nil {
					b.Fatal(err)
				}
			}
			if end := threadCPUTime(); start >= 0 && end >= start {
				b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

func BenchmarkVerifyChecksums(b *testing.B) {
	for _, f := range benchFrames() {
		b.Run(f.name, func(b *testing.B) {
			var p Parsed
			if err := p.Decode(f.frame, f.link); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(f.frame)))
			for b.Loop() {
				if err := p.VerifyChecksums(f.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendTCP(b *testing.B) {
	spec := TCPSpec{Src: ap(v4a, 40000), Dst: ap(v4b, 80), Flags: ACK, Payload: make([]byte, 100)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTCP(buf[:0], spec)
	}
}
