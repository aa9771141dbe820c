package capture

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"keepstate/packet"
)

func TestPcapVariants(t *testing.T) {
	d1 := []byte{0x45, 0, 0, 20, 1, 2, 3}
	d2 := []byte{0xde, 0xad, 0xbe, 0xef, 0x99}
	build := func(bigEndian bool, magic uint32) []byte {
		b := newBuilder(bigEndian).pcapHeader(magic, 65535, 1)
		b.pcapRecord(1700000000, 123456, d1, 60)
		b.pcapRecord(1700000001, 999999, d2, 5)
		return b.Bytes()
	}
	modified := newBuilder(false).pcapHeader(magicModified, 96, 113)
	modified.u32(5).u32(250000).u32(uint32(len(d1))).u32(7).u32(3).u16(0x0800).u16(0)
	modified.Write(d1)

	tests := []struct {
		name       string
		in         []byte
		compressed bool
		link       packet.LinkType
		snap       int
		want       []Packet
	}{
		{"little endian micro", build(false, magicMicros), false, packet.LinkEthernet, 65535, []Packet{
			{Data: d1, Time: 1700000000_123456000, CaptureLen: 7, OrigLen: 60, Link: 1, Iface: -1, Offset: 24},
			{Data: d2, Time: 1700000001_999999000, CaptureLen: 5, OrigLen: 5, Link: 1, Iface: -1, Offset: 47},
		}},
		{"big endian micro", build(true, magicMicros), false, packet.LinkEthernet, 65535, []Packet{
			{Data: d1, Time: 1700000000_123456000, CaptureLen: 7, OrigLen: 60, Link: 1, Iface: -1, Offset: 24},
			{Data: d2, Time: 1700000001_999999000, CaptureLen: 5, OrigLen: 5, Link: 1, Iface: -1, Offset: 47},
		}},
		{"big endian nano", build(true, magicNanos), false, packet.LinkEthernet, 65535, []Packet{
			{Data: d1, Time: 1700000000_000123456, CaptureLen: 7, OrigLen: 60, Link: 1, Iface: -1, Offset: 24},
			{Data: d2, Time: 1700000001_000999999, CaptureLen: 5, OrigLen: 5, Link: 1, Iface: -1, Offset: 47},
		}},
		{"gzip little endian nano", gzipBytes(build(false, magicNanos)), true, packet.LinkEthernet, 65535, []Packet{
			{Data: d1, Time: 1700000000_000123456, CaptureLen: 7, OrigLen: 60, Link: 1, Iface: -1, Offset: 24},
			{Data: d2, Time: 1700000001_000999999, CaptureLen: 5, OrigLen: 5, Link: 1, Iface: -1, Offset: 47},
		}},
		{"modified (Kuznetsov) records", modified.Bytes(), false, packet.LinkLinuxSLL, 96, []Packet{
			{Data: d1, Time: 5_250000000, CaptureLen: 7, OrigLen: 7, Link: 113, Iface: -1, Offset: 24},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != FormatPcap || r.Compressed() != tc.compressed || r.LinkType() != tc.link ||
				r.SnapLen() != tc.snap || r.Interfaces() != nil && len(r.Interfaces()) != 0 {
				t.Fatalf("format %v compressed %v link %d snap %d ifaces %v", r.Format(), r.Compressed(),
					r.LinkType(), r.SnapLen(), r.Interfaces())
			}
			got, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("final error %v, want io.EOF", err)
			}
			comparePackets(t, got, tc.want)
		})
	}
}

func comparePackets(t *testing.T, got, want []Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.Comment, w.Comment) {
			t.Errorf("packet %d: data %x comment %q, want %x %q", i, g.Data, g.Comment, w.Data, w.Comment)
		}
		g.Data, g.Comment, w.Data, w.Comment = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("packet %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// TestPcapErrors checks that damage is reported at the offset of the broken record,
// after every intact record has been returned.
func TestPcapErrors(t *testing.T) {
	good := newBuilder(false).pcapHeader(magicMicros, 1514, 1).pcapRecord(1, 2, []byte{1, 2, 3, 4}, 4)
	withTail := func(tail ...byte) []byte { return append(bytes.Clone(good.Bytes()), tail...) }
	truncRec := newBuilder(false).u32(9).u32(0).u32(1514).u32(1514)
	truncRec.Write(make([]byte, 200))
	huge := newBuilder(false).u32(9).u32(0).u32(MaxCaptureLen + 1).u32(MaxCaptureLen + 1)

	tests := []struct {
		name    string
		in      []byte
		packets int
		kind    error
		off     int64
		msg     string
	}{
		{"clean end", good.Bytes(), 1, io.EOF, 0, ""},
		{"truncated record header", withTail(1, 2, 3, 4, 5), 1, ErrTruncated, 44,
			"capture: offset 44: truncated record header: needs 16 bytes, 5 left"},
		{"truncated record", withTail(truncRec.Bytes()...), 1, ErrTruncated, 44,
			"capture: offset 44: truncated record: header says 1514 bytes, 200 left"},
		{"captured length too large", withTail(huge.Bytes()...), 1, ErrTooLarge, 44,
			"capture: offset 44: record header says 262145 captured bytes, more than the limit of 262144 (snaplen 1514)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(r)
			if len(pkts) != tc.packets {
				t.Errorf("got %d packets before the error, want %d", len(pkts), tc.packets)
			}
			checkErr(t, err, tc.kind, tc.off, tc.msg)
			if _, again := r.Next(); again != err {
				t.Errorf("second Next returned %v, want the same error again", again)
			}
		})
	}
}

func checkErr(t *testing.T, err, kind error, off int64, msg string) {
	t.Helper()
	if kind == io.EOF {
		if err != io.EOF {
			t.Fatalf("error %v, want io.EOF", err)
		}
		return
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if !errors.Is(err, kind) || fe.Offset != off || (msg != "" && err.Error() != msg) {
		t.Errorf("error %q (offset %d, kind %v), want %q (offset %d, kind %v)", err, fe.Offset, fe.Err, msg, off, kind)
	}
}

func TestNewReaderRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "capture: offset 0: empty input"},
		{"short magic", []byte{0xd4, 0xc3}, ErrTruncated, "capture: offset 0: truncated file header: needs 4 bytes, 2 left"},
		{"short pcap header", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0}, ErrTruncated,
			"capture: offset 0: truncated pcap file header: needs 24 bytes, 6 left"},
		{"unknown magic", []byte("GET / HTTP/1.1\r\nHost: example\r\n"), ErrCorrupt,
			"capture: offset 0: unknown magic 0x47455420: not a pcap or pcapng capture"},
		{"pcap version 1", newBuilder(false).u32(magicMicros).u16(1).u16(0).u64(0).u64(0).Bytes(), ErrUnsupported,
			"capture: offset 0: pcap version 1.0"},
		{"gzip header only", []byte{0x1f, 0x8b, 8, 0}, ErrTruncated, ""},
		{"pcapng bad byte order", newBuilder(false).u32(blockSectionHeader).u32(28).u32(0x11223344).Bytes(),
			ErrCorrupt, "capture: offset 0: section header block has byte-order magic 0x44332211"},
		{"pcapng version 2", newBuilder(true).u32(blockSectionHeader).u32(28).u32(byteOrderMagic).u16(2).u16(0).
			u64(0).u32(28).Bytes(), ErrUnsupported, "capture: offset 0: pcapng version 2.0"},
		{"pcapng section header too short", newBuilder(false).u32(blockSectionHeader).u32(24).u32(byteOrderMagic).
			u16(1).u16(0).u64(0).Bytes(), ErrCorrupt,
			"capture: offset 0: section header block length 24 is less than the minimum 28"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.in))
			if r != nil {
				t.Fatalf("got a reader, want an error")
			}
			checkErr(t, err, tc.kind, 0, tc.msg)
		})
	}
}

// TestLargeRecords reads records far larger than the initial buffer (sized to a small
// input) and than the default one, from a reader that does not expose its length.
func TestLargeRecords(t *testing.T) {
	sizes := []int{10, MaxCaptureLen, 3000, MaxCaptureLen - 1, 1}
	b := newBuilder(false).pcapHeader(magicNanos, MaxCaptureLen, 101)
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		b.pcapRecord(uint32(i), 0, data, uint32(n))
	}
	for _, in := range []io.Reader{bytes.NewReader(b.Bytes()), io.MultiReader(bytes.NewReader(b.Bytes()))} {
		r, err := NewReader(in)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if err != io.EOF || len(pkts) != len(sizes) {
			t.Fatalf("%d packets, error %v", len(pkts), err)
		}
		for i, p := range pkts {
			if len(p.Data) != sizes[i] || p.Data[0] != byte(i+1) || p.Data[len(p.Data)-1] != byte(i+1) {
				t.Errorf("packet %d: %d bytes starting %x", i, len(p.Data), p.Data[:1])
			}
		}
	}
}
