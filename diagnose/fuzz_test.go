package diagnose

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// writeRawPcap writes frames (raw IP) as a pcap file with the given times.
func writeRawPcap(t *testing.T, path string, frames [][]byte, times []int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewPcapWriter(f, packet.LinkRaw, 65535, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := w.WritePacket(times[i], fr, len(fr)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// splitFrames cuts fuzz input into frames: a 2-byte length, a 2-byte time step in
// milliseconds, the frame. Time steps of 0xffff mean two hours, to reach the
// timeouts.
func splitFrames(data []byte, start int64) (frames [][]byte, times []int64) {
	t := start
	for len(data) >= 4 && len(frames) < 200 {
		n := int(binary.BigEndian.Uint16(data)) % 200
		step := int64(binary.BigEndian.Uint16(data[2:]))
		data = data[4:]
		if n > len(data) {
			n = len(data)
		}
		if step == 0xffff {
			t += int64(2 * time.Hour)
		} else {
			t += step * int64(time.Millisecond)
		}
		frames = append(frames, data[:n])
		times = append(times, t)
		data = data[n:]
	}
	return frames, times
}

// FuzzDiagnose feeds arbitrary packets (as two captures) to Diff, Advise and
// ExplainCapture: captures are untrusted input, nothing may panic.
func FuzzDiagnose(f *testing.F) {
	syn := packet.AppendTCP(nil, packet.TCPSpec{Src: ap("10.1.0.2:40000"), Dst: ap("10.2.0.2:8080"), Flags: packet.SYN, Seq: 7})
	synack := packet.AppendTCP(nil, packet.TCPSpec{Src: ap("10.2.0.2:8080"), Dst: ap("10.1.0.2:40000"), Flags: packet.SYN | packet.ACK, Seq: 9, Ack: 8})
	ka := packet.AppendTCP(nil, packet.TCPSpec{Src: ap("10.2.0.2:8080"), Dst: ap("10.1.0.2:40000"), Flags: packet.ACK, Seq: 9, Ack: 8})
	rec := func(step uint16, b []byte) []byte {
		h := []byte{byte(len(b) >> 8), byte(len(b)), byte(step >> 8), byte(step)}
		return append(h, b...)
	}
	var seed []byte
	seed = append(seed, rec(1, syn)...)
	seed = append(seed, rec(1, synack)...)
	seed = append(seed, rec(0xffff, ka)...)
	f.Add(seed, seed, uint8(0))
	f.Add(seed, []byte{}, uint8(3))
	f.Add([]byte{0, 3, 0, 1, 0x45, 0, 0}, seed, uint8(200))
	cfg := story1Config(f)
	f.Fuzz(func(t *testing.T, da, db []byte, n uint8) {
		dir := t.TempDir()
		start := time.Date(2012, 9, 23, 11, 0, 0, 0, time.UTC).UnixNano()
		fa, ta := splitFrames(da, start)
		fb, tb := splitFrames(db, start+int64(n)*int64(time.Second))
		a, b := filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap")
		writeRawPcap(t, a, fa, ta)
		writeRawPcap(t, b, fb, tb)
		r, err := Diff(a, b, DiffOptions{Policy: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if r.Crossed+r.OnlyA+r.OnlyB+r.OutsideOverlap != r.A.Packets+r.B.Packets-r.Crossed {
			t.Fatalf("packets do not add up: %+v", r)
		}
		if err := r.WriteHTML(discard{}); err != nil {
			t.Fatal(err)
		}
		ar, err := Advise(a, AdviseOptions{Policy: cfg, BytesPerConn: 100})
		if err != nil {
			t.Fatal(err)
		}
		if err := ar.WriteHTML(discard{}); err != nil {
			t.Fatal(err)
		}
		if len(fa) > 0 {
			if _, err := ExplainCapture(cfg, a, 1+int(n)%len(fa)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
