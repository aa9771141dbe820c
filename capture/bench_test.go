package capture

import (
	"bytes"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"keepstate/packet"
)

// The replay budget is 3 M packets/s on one core for the whole pipeline, so reading
// alone must be far faster: each benchmark reads a synthetic capture of a million
// packets held in memory and reports packets per second, both by the wall clock and
// by the process's CPU time ("cpu-Mpkt/s"), which stays meaningful when other work
// shares the machine.

const benchPackets = 1_000_000

var benchCaptures = sync.OnceValue(func() map[string][]byte {
	data := make([]byte, 64) // a small TCP segment over Ethernet: the common case
	var pc, ng bytes.Buffer
	pw, _ := NewPcapWriter(&pc, packet.LinkEthernet, 0, true)
	nw, _ := NewNgWriter(&ng, []Interface{{Name: "eth0", Link: packet.LinkEthernet}, {Name: "eth1", Link: packet.LinkEthernet}})
	for i := range benchPackets {
		t := 1_700_000_000_000_000_000 + int64(i)*333
		pw.WritePacket(t, data, 64)
		nw.WritePacket(i&1, t, data, 64, "")
	}
	pw.Close()
	nw.Close()
	return map[string][]byte{"pcap": pc.Bytes(), "pcapng": ng.Bytes(), "pcap.gz": gzipBytes(pc.Bytes())}
})

func benchmarkRead(b *testing.B, format string) {
	in := benchCaptures()[format]
	b.SetBytes(int64(len(in) / benchPackets))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	var r *Reader
	var sum int
	for i := 0; i < b.N; i++ {
		if i%benchPackets == 0 {
			var err error
			if r, err = NewReader(bytes.NewReader(in)); err != nil {
				b.Fatal(err)
			}
		}
		p, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		sum += len(p.Data)
	}
	reportRate(b, b.N, cpu)
	if sum != 64*b.N {
		b.Fatal("short read")
	}
}

func BenchmarkReadPcap(b *testing.B)     { benchmarkRead(b, "pcap") }
func BenchmarkReadPcapNG(b *testing.B)   { benchmarkRead(b, "pcapng") }
func BenchmarkReadPcapGzip(b *testing.B) { benchmarkRead(b, "pcap.gz") }

// BenchmarkReadFile reads the whole million-packet pcap per iteration, including
// opening it, as replay does.
func BenchmarkReadFile(b *testing.B) {
	in := benchCaptures()["pcap"]
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			n++
		}
		if n != benchPackets {
			b.Fatalf("read %d packets", n)
		}
	}
	reportRate(b, b.N*benchPackets, cpu)
}

// cpuTime is the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports packets per second by wall clock and by CPU time since cpuStart.
func reportRate(b *testing.B, packets int, cpuStart time.Duration) {
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds()/1e6, "Mpkt/s")
	b.ReportMetric(float64(packets)/(cpuTime()-cpuStart).Seconds()/1e6, "cpu-Mpkt/s")
}

func BenchmarkNgWriter(b *testing.B) {
	for _, comment := range []string{"", "handshake_not_completed"} {
		b.Run("comment="+comment, func(b *testing.B) {
			w, _ := NewNgWriter(io.Discard, []Interface{{Link: packet.LinkEthernet}})
			data := make([]byte, 64)
			b.ReportAllocs()
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				w.WritePacket(0, int64(i), data, 64, comment)
			}
			reportRate(b, b.N, cpu)
		})
	}
}

func BenchmarkPcapWriter(b *testing.B) {
	w, _ := NewPcapWriter(io.Discard, packet.LinkEthernet, 0, true)
	data := make([]byte, 64)
	b.ReportAllocs()
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		w.WritePacket(int64(i), data, 64)
	}
	reportRate(b, b.N, cpu)
}
