package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"keepstate/packet"
)

// Fuzz targets: arbitrary bytes must never panic, every packet handed out must be
// self-consistent, every failure must be io.EOF or a *FormatError, and whatever was
// read must survive a round trip through the pcapng writer.

func FuzzReadPcap(f *testing.F) {
	f.Add(manyRecords(3))
	f.Add(newBuilder(true).pcapHeader(magicMicros, 96, 1).pcapRecord(1, 2, []byte{1, 2, 3}, 60).Bytes())
	mod := newBuilder(false).pcapHeader(magicModified, 96, 113)
	mod.u32(5).u32(250000).u32(2).u32(7).u32(3).u16(0x0800).u16(0).u16(0xabcd)
	f.Add(mod.Bytes())
	var buf bytes.Buffer
	w, _ := NewPcapWriter(&buf, packet.LinkEthernet, 0, true)
	w.WritePacket(1_700_000_000_000_000_001, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5, 8, 0}, 14)
	w.Close()
	f.Add(buf.Bytes())
	f.Add(gzipBytes(manyRecords(2)))
	f.Fuzz(checkArbitraryInput)
}

func FuzzReadPcapNG(f *testing.F) {
	b := newBuilder(false).shb(stropt(optUserAppl, "fuzz"))
	b.idb(1, 65535, stropt(optIfName, "eth0"), u8opt(optTSResol, 9), opt{optTSOffset, b.body().u64(7).Bytes()})
	b.epb(0, 1, []byte{1, 2, 3, 4, 5}, 5, stropt(optComment, "c"))
	b.spb(3, []byte{1, 2, 3})
	b.pb(0, 2, []byte{1}, 1)
	b.ngBlock(5, make([]byte, 8))
	f.Add(b.Bytes())
	be := newBuilder(true).shb()
	be.idb(101, 0, u8opt(optTSResol, 0x8a))
	be.epb(0, 1<<40, []byte{0x45}, 1)
	f.Add(be.Bytes())
	f.Add(append(bytes.Clone(b.Bytes()), be.Bytes()...))
	var buf bytes.Buffer
	w, _ := NewNgWriter(&buf, []Interface{{Name: "a", Link: packet.LinkRaw}, {Link: packet.LinkEthernet, SnapLen: 8}})
	w.WritePacket(0, 5, []byte{0x45, 0, 0, 20}, 20, "out_of_window")
	w.WritePacket(1, 6, make([]byte, 20), 20, "")
	w.Close()
	f.Add(buf.Bytes())
	f.Add(gzipBytes(buf.Bytes()))
	f.Fuzz(checkArbitraryInput)
}

func checkArbitraryInput(t *testing.T, in []byte) {
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		var fe *FormatError
		if r != nil || !errors.As(err, &fe) {
			t.Fatalf("NewReader: reader %v, error %v (%T)", r != nil, err, err)
		}
		return
	}
	var got []Packet
	next := int64(0)
	for len(got) < 10000 {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			if fe.Offset < next {
				t.Fatalf("error at offset %d, inside the previous record (ends at %d)", fe.Offset, next)
			}
			break
		}
		if len(p.Data) != p.CaptureLen || cap(p.Data) != len(p.Data) || p.CaptureLen > MaxCaptureLen {
			t.Fatalf("data len %d cap %d, capture length %d", len(p.Data), cap(p.Data), p.CaptureLen)
		}
		if p.Offset < next {
			t.Fatalf("record at offset %d overlaps the previous one (ends at %d)", p.Offset, next)
		}
		if r.Format() == FormatPcapNG && (p.Iface < 0 || p.Iface >= len(r.Interfaces())) {
			t.Fatalf("interface %d of %d", p.Iface, len(r.Interfaces()))
		}
		next = p.Offset + 12 + int64(p.CaptureLen)
		p.Data, p.Comment = bytes.Clone(p.Data), bytes.Clone(p.Comment)
		got = append(got, p)
	}
	roundTrip(t, got)
}

// roundTrip writes the packets with NgWriter on one interface per link type and checks
// that reading them back gives the same data, times and comments.
func roundTrip(t *testing.T, pkts []Packet) {
	var ifaces []Interface
	index := map[packet.LinkType]int{}
	var kept []Packet
	for _, p := range pkts {
		if p.Time < 0 {
			continue // the writer refuses times before 1970
		}
		if _, ok := index[p.Link]; !ok {
			index[p.Link] = len(ifaces)
			ifaces = append(ifaces, Interface{Link: p.Link})
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return
	}
	var buf bytes.Buffer
	w, err := NewNgWriter(&buf, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range kept {
		if err := w.WritePacket(index[p.Link], p.Time, p.Data, p.OrigLen, string(p.Comment)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range kept {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("rereading packet %d: %v", i, err)
		}
		if !bytes.Equal(p.Data, want.Data) || !bytes.Equal(p.Comment, want.Comment) || p.Time != want.Time ||
			p.Link != want.Link || p.OrigLen != max(want.OrigLen, want.CaptureLen) {
			t.Fatalf("packet %d changed in a round trip:\n got %+v\nwant %+v", i, p, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last packet: %v", err)
	}
}
