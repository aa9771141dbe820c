package capture

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	"keepstate/packet"
)

// multiSectionCapture builds two sections of opposite byte order with several
// interfaces, timestamp resolutions, an offset, every packet block type and blocks the
// Reader must skip, and returns it with the packets and interfaces it holds.
func multiSectionCapture() (in []byte, want []Packet, wantIfaces []Interface) {
	b := newBuilder(false)
	b.shb(stropt(optUserAppl, "test"))
	b.idb(1, 65535, stropt(optIfName, "eth0"), stropt(optIfDesc, "uplink"))
	offEPB := int64(b.Len())
	b.epb(0, 1_500_000, []byte{1, 2, 3, 4, 5}, 60, stropt(optComment, "hello"), stropt(optComment, "second"))
	b.idb(101, 0, u8opt(optTSResol, 9), opt{optTSOffset, b.body().u64(100).Bytes()})
	b.ngBlock(0xbad0, []byte{9, 9, 9, 9, 9, 9, 9, 9})
	b.ngBlock(5, make([]byte, 20)) // interface statistics
	offEPB2 := int64(b.Len())
	b.epb(1, 1_000_000_123, []byte{0x45, 0, 0, 4}, 4)
	offSPB := int64(b.Len())
	b.spb(6, []byte{6, 5, 4, 3, 2, 1})
	offPB := int64(b.Len())
	b.pb(0, 2_000_000, []byte{7, 7, 7}, 3)
	// A second section, big-endian, numbering its interfaces from zero again.
	be := newBuilder(true)
	be.shb()
	be.idb(113, 128, stropt(optIfName, "any\x00"), u8opt(optTSResol, 0x80|10))
	offBE := int64(b.Len() + be.Len())
	be.epb(0, 5*1024+512, []byte{0xaa, 0xbb}, 2)
	in = append(b.Bytes(), be.Bytes()...)

	want = []Packet{
		{Data: []byte{1, 2, 3, 4, 5}, Comment: []byte("hello"), Time: 1_500_000_000, CaptureLen: 5, OrigLen: 60,
			Link: packet.LinkEthernet, Iface: 0, Offset: offEPB},
		{Data: []byte{0x45, 0, 0, 4}, Time: 101_000_000_123, CaptureLen: 4, OrigLen: 4,
			Link: packet.LinkRaw, Iface: 1, Offset: offEPB2},
		{Data: []byte{6, 5, 4, 3, 2, 1}, Time: 101_000_000_123, CaptureLen: 6, OrigLen: 6,
			Link: packet.LinkEthernet, Iface: 0, Offset: offSPB},
		{Data: []byte{7, 7, 7}, Time: 2_000_000_000, CaptureLen: 3, OrigLen: 3,
			Link: packet.LinkEthernet, Iface: 0, Offset: offPB},
		{Data: []byte{0xaa, 0xbb}, Time: 5_500_000_000, CaptureLen: 2, OrigLen: 2,
			Link: packet.LinkLinuxSLL, Iface: 2, Offset: offBE},
	}
	wantIfaces = []Interface{
		{Name: "eth0", Description: "uplink", Link: 1, SnapLen: 65535, TSResol: 6},
		{Link: 101, TSResol: 9, TSOffset: 100},
		{Name: "any", Link: 113, SnapLen: 128, TSResol: 0x8a, Section: 1},
	}
	return in, want, wantIfaces
}

// TestPcapNGSections checks each field of each packet and interface of
// multiSectionCapture, plain and gzip-compressed.
func TestPcapNGSections(t *testing.T) {
	in, want, wantIfaces := multiSectionCapture()
	for _, compressed := range []bool{false, true} {
		input := in
		if compressed {
			input = gzipBytes(in)
		}
		r, err := NewReader(bytes.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		if r.Format() != FormatPcapNG || r.Compressed() != compressed {
			t.Fatalf("format %v compressed %v", r.Format(), r.Compressed())
		}
		if len(r.Interfaces()) != 0 {
			t.Fatalf("interfaces known before the first block: %v", r.Interfaces())
		}
		got, err := readAll(r)
		if err != io.EOF {
			t.Fatalf("final error %v", err)
		}
		comparePackets(t, got, want)
		if !reflect.DeepEqual(r.Interfaces(), wantIfaces) {
			t.Errorf("interfaces\n got %+v\nwant %+v", r.Interfaces(), wantIfaces)
		}
		if r.LinkType() != packet.LinkEthernet || r.SnapLen() != 65535 {
			t.Errorf("link %d snap %d", r.LinkType(), r.SnapLen())
		}
	}
}

func TestTimestampResolutions(t *testing.T) {
	tests := []struct {
		resol  uint8
		offset int64
		ts     uint64
		want   int64
	}{
		{6, 0, 1_700_000_000_123_456, 1_700_000_000_123_456_000},
		{9, 0, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789},
		{3, 0, 1_700_000_000_123, 1_700_000_000_123_000_000},
		{0, 0, 1_700_000_000, 1_700_000_000_000_000_000},
		{12, 0, 1_700_000_000_123_456_789, 1_700_000_000_123_456},
		{28, 0, 1 << 63, 0},
		{29, 0, 1 << 63, 0},
		{0x80, 0, 3, 3_000_000_000},
		{0x80 | 10, 0, 1024 + 256, 1_250_000_000},
		{0x80 | 30, 0, 1 << 29, 500_000_000},
		{0x80 | 64, 0, 1 << 63, 500_000_000},
		{0x80 | 100, 0, 1 << 63, 0},
		{6, -3600, 3600_000_000, 0},
	}
	for _, tc := range tests {
		c := newTSConv(tc.resol, tc.offset)
		if got := c.nanos(tc.ts); got != tc.want {
			t.Errorf("tsresol %#x offset %d ts %d: got %d, want %d", tc.resol, tc.offset, tc.ts, got, tc.want)
		}
	}
}

func TestPcapNGErrors(t *testing.T) {
	// prefix: a section, one interface and one good packet, then the damage at offset 88.
	prefix := func() *capBuilder {
		b := newBuilder(false).shb()
		b.idb(1, 0)
		return b.epb(0, 1, []byte{1, 2, 3, 4}, 4)
	}
	const at = 28 + 20 + 36
	if n := prefix().Len(); n != at {
		t.Fatalf("prefix is %d bytes, the cases below assume %d", n, at)
	}
	tests := []struct {
		name    string
		damage  func(b *capBuilder)
		packets int
		kind    error
		msg     string
	}{
		{"length not a multiple of 4", func(b *capBuilder) { b.u32(0x99).u32(30) }, 1, ErrCorrupt,
			"block length 30 is not a multiple of 4"},
		{"packet block length not a multiple of 4", func(b *capBuilder) { b.u32(6).u32(34) }, 1, ErrCorrupt,
			"packet block length 34 is not a multiple of 4"},
		{"length below 12", func(b *capBuilder) { b.u32(0x99).u32(8) }, 1, ErrCorrupt,
			"block length 8 is less than the minimum 12"},
		{"packet block below its minimum", func(b *capBuilder) { b.u32(6).u32(28) }, 1, ErrCorrupt,
			"packet block length 28 is less than the minimum 32"},
		{"trailing length differs", func(b *capBuilder) {
			b.u32(6).u32(36).u32(0).u32(0).u32(0).u32(4).u32(4).u32(0).u32(40)
		}, 1, ErrCorrupt, "packet block trailing length 40 differs from its length 36"},
		{"skipped block trailing length differs", func(b *capBuilder) { b.u32(0x99).u32(16).u32(0).u32(12) }, 1,
			ErrCorrupt, "block trailing length 12 differs from its length 16"},
		{"undeclared interface", func(b *capBuilder) { b.epb(3, 1, []byte{1}, 1) }, 1, ErrCorrupt,
			"packet on interface 3, but the section describes 1"},
		{"captured length beyond the block", func(b *capBuilder) {
			b.u32(6).u32(36).u32(0).u32(0).u32(0).u32(100).u32(100).u32(0).u32(36)
		}, 1, ErrCorrupt, "packet block says 100 captured bytes, block of 36 has room for 4"},
		{"captured length above the limit", func(b *capBuilder) {
			b.u32(6).u32(36).u32(0).u32(0).u32(0).u32(MaxCaptureLen + 1).u32(0).u32(0).u32(36)
		}, 1, ErrTooLarge, "packet block says 262145 captured bytes, more than the limit of 262144"},
		{"block above the limit", func(b *capBuilder) { b.u32(6).u32(2 << 20).u32(0) }, 1, ErrTooLarge,
			"packet block length 2097152 exceeds the limit of 1048576"},
		{"truncated packet block", func(b *capBuilder) { b.u32(6).u32(100); b.Write(make([]byte, 32)) }, 1,
			ErrTruncated, "truncated packet block: header says 92 bytes, 32 left"},
		{"truncated skipped block", func(b *capBuilder) { b.u32(0x99).u32(1000); b.Write(make([]byte, 20)) }, 1,
			ErrTruncated, "truncated block: header says 992 bytes, 20 left"},
		{"truncated block header", func(b *capBuilder) { b.Write([]byte{6, 0, 0, 0, 9}) }, 1, ErrTruncated,
			"truncated block header: needs 8 bytes, 5 left"},
		{"option past the block", func(b *capBuilder) {
			b.u32(6).u32(40).u32(0).u32(0).u32(0).u32(4).u32(4).u32(0).u16(1).u16(200).u32(40)
		}, 1, ErrCorrupt, "packet block: option 1 runs past the end of the block"},
		{"interface option past the block", func(b *capBuilder) {
			b.u32(1).u32(24).u16(1).u16(0).u32(0).u16(2).u16(9).u32(24)
		}, 1, ErrCorrupt, "interface description block: option 2 runs past the end of the block"},
		{"new section forgets interfaces", func(b *capBuilder) { b.shb(); b.epb(0, 1, []byte{1}, 1) }, 1,
			ErrCorrupt, ""},
		{"simple packet before interfaces", func(b *capBuilder) { b.shb(); b.spb(1, []byte{1}) }, 1, ErrCorrupt,
			""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := prefix()
			tc.damage(b)
			r, err := NewReader(bytes.NewReader(b.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(r)
			if len(pkts) != tc.packets {
				t.Errorf("got %d packets before the error, want %d", len(pkts), tc.packets)
			}
			msg := ""
			if tc.msg != "" {
				msg = "capture: offset 84: " + tc.msg
			}
			off := int64(at)
			if tc.name == "new section forgets interfaces" || tc.name == "simple packet before interfaces" {
				off += 28 // the damage is the packet after the new section header
			}
			checkErr(t, err, tc.kind, off, msg)
		})
	}
}

func TestTooManyInterfaces(t *testing.T) {
	b := newBuilder(false).shb()
	for range MaxInterfaces {
		b.idb(1, 0)
	}
	b.epb(MaxInterfaces-1, 7, []byte{1}, 1)
	at := int64(b.Len())
	b.idb(1, 0)
	r, err := NewReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(r)
	if len(pkts) != 1 || pkts[0].Iface != MaxInterfaces-1 {
		t.Fatalf("packets %+v", pkts)
	}
	checkErr(t, err, ErrTooLarge, at, "capture: offset 1310784: more than 65536 interface descriptions")
}
