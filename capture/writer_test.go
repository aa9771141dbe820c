package capture

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"keepstate/packet"
)

func TestNgWriterRoundTrip(t *testing.T) {
	ifaces := []Interface{
		{Name: "eth0", Description: "LAN side", Link: packet.LinkEthernet, SnapLen: 1514},
		{Name: "nfqueue", Link: packet.LinkRaw},
		{Link: packet.LinkLinuxSLL2, SnapLen: 4},
	}
	var buf bytes.Buffer
	w, err := NewNgWriter(&buf, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		iface   int
		time    int64
		data    []byte
		origLen int
		comment string
	}{
		{0, 1_700_000_000_123_456_789, []byte{1, 2, 3, 4, 5, 6, 7}, 1500, "out_of_window"},
		{1, 1_700_000_001_000_000_001, []byte{0x45, 0, 0, 20}, 0, ""},
		{2, 3, []byte{9, 8, 7, 6, 5, 4}, 6, "cut to the 4-byte snap length"},
		{0, 0, []byte{}, 0, strings.Repeat("x", 65535)},
	}
	for _, wr := range writes {
		if err := w.WritePacket(wr.iface, wr.time, wr.data, wr.origLen, wr.comment); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, 0, nil, 0, ""); err == nil {
		t.Error("write after Close succeeded")
	}

	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(r)
	if err != io.EOF {
		t.Fatal(err)
	}
	// Offsets: section header 48 (with shb_userappl "keepstate"), interfaces 52, 44 and
	// 32, then packet blocks of 64, 36 and 76 bytes.
	want := []Packet{
		{Data: []byte{1, 2, 3, 4, 5, 6, 7}, Comment: []byte("out_of_window"), Time: 1_700_000_000_123_456_789,
			CaptureLen: 7, OrigLen: 1500, Link: packet.LinkEthernet, Iface: 0, Offset: 176},
		{Data: []byte{0x45, 0, 0, 20}, Time: 1_700_000_001_000_000_001, CaptureLen: 4, OrigLen: 4,
			Link: packet.LinkRaw, Iface: 1, Offset: 240},
		{Data: []byte{9, 8, 7, 6}, Comment: []byte("cut to the 4-byte snap length"), Time: 3, CaptureLen: 4,
			OrigLen: 6, Link: packet.LinkLinuxSLL2, Iface: 2, Offset: 276},
		{Data: []byte{}, Comment: []byte(strings.Repeat("x", 65535)), Time: 0, OrigLen: 0,
			Link: packet.LinkEthernet, Iface: 0, Offset: 352},
	}
	comparePackets(t, got, want)
	wantIfaces := []Interface{
		{Name: "eth0", Description: "LAN side", Link: packet.LinkEthernet, SnapLen: 1514, TSResol: 9},
		{Name: "nfqueue", Link: packet.LinkRaw, SnapLen: MaxCaptureLen, TSResol: 9},
		{Link: packet.LinkLinuxSLL2, SnapLen: 4, TSResol: 9},
	}
	for i, ifc := range r.Interfaces() {
		if ifc != wantIfaces[i] {
			t.Errorf("interface %d: %+v, want %+v", i, ifc, wantIfaces[i])
		}
	}
}

func TestNgWriterRejects(t *testing.T) {
	if _, err := NewNgWriter(io.Discard, nil); err == nil {
		t.Error("NewNgWriter without interfaces succeeded")
	}
	w, err := NewNgWriter(io.Discard, []Interface{{Link: packet.LinkRaw}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iface   int
		time    int64
		comment string
		want    string
	}{
		{1, 0, "", "capture: interface 1 not declared (have 1)"},
		{-1, 0, "", "capture: interface -1 not declared (have 1)"},
		{0, -1, "", "capture: negative timestamp -1"},
		{0, 0, strings.Repeat("y", 65536), "capture: comment of 65536 bytes exceeds 65535"},
	} {
		if err := w.WritePacket(tc.iface, tc.time, []byte{1}, 1, tc.comment); err == nil || err.Error() != tc.want {
			t.Errorf("WritePacket(%d, %d, comment of %d): %v, want %q", tc.iface, tc.time, len(tc.comment), err, tc.want)
		}
	}
}

func TestPcapWriterRoundTrip(t *testing.T) {
	for _, nanos := range []bool{false, true} {
		var buf bytes.Buffer
		w, err := NewPcapWriter(&buf, packet.LinkEthernet, 8, nanos)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(1_700_000_000_123_456_789, []byte{1, 2, 3}, 0); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(5, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(-1, nil, 0); err == nil {
			t.Error("negative time accepted")
		}
		if err := w.WritePacket(1<<32*1e9, nil, 0); err == nil {
			t.Error("time past 2106 accepted")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != packet.LinkEthernet || r.SnapLen() != 8 {
			t.Fatalf("link %d snap %d", r.LinkType(), r.SnapLen())
		}
		got, err := readAll(r)
		if err != io.EOF {
			t.Fatal(err)
		}
		t1, t2 := int64(1_700_000_000_123_456_000), int64(0)
		if nanos {
			t1, t2 = 1_700_000_000_123_456_789, 5
		}
		comparePackets(t, got, []Packet{
			{Data: []byte{1, 2, 3}, Time: t1, CaptureLen: 3, OrigLen: 3, Link: 1, Iface: -1, Offset: 24},
			{Data: []byte{0, 1, 2, 3, 4, 5, 6, 7}, Time: t2, CaptureLen: 8, OrigLen: 10, Link: 1, Iface: -1, Offset: 43},
		})
	}
}

func TestWritersDoNotAllocate(t *testing.T) {
	ng, err := NewNgWriter(io.Discard, []Interface{{Link: packet.LinkEthernet}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := NewPcapWriter(io.Discard, packet.LinkEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1514)
	comment := "handshake_not_completed"
	for name, write := range map[string]func(){
		"pcapng":              func() { ng.WritePacket(0, 1, data, 1514, "") },
		"pcapng with comment": func() { ng.WritePacket(0, 1, data, 1514, comment) },
		"pcap":                func() { pc.WritePacket(1, data, 1514) },
	} {
		if n := testing.AllocsPerRun(1000, write); n != 0 {
			t.Errorf("%s: %.1f allocations per packet", name, n)
		}
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct{ limit int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errors.New("disk full")
	}
	f.limit -= len(p)
	return len(p), nil
}

func TestWriterErrorsAreSticky(t *testing.T) {
	w, err := NewNgWriter(&failingWriter{limit: 100 << 10}, []Interface{{Link: packet.LinkRaw}})
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for i := 0; i < 1000 && first == nil; i++ {
		first = w.WritePacket(0, 1, make([]byte, 1000), 1000, "")
	}
	if first == nil || first.Error() != "disk full" {
		t.Fatalf("error %v, want disk full", first)
	}
	if err := w.WritePacket(0, 1, nil, 0, ""); err != first {
		t.Errorf("next write: %v", err)
	}
	if err := w.Flush(); err != first {
		t.Errorf("flush: %v", err)
	}
}
