package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// manyRecords builds a pcap of n records of 100 bytes each (116 with the header).
func manyRecords(n int) []byte {
	b := newBuilder(false).pcapHeader(magicNanos, 65535, 1)
	data := make([]byte, 100)
	for i := range n {
		data[0] = byte(i)
		b.pcapRecord(uint32(i), uint32(i), data, 100)
	}
	return b.Bytes()
}

func TestGzipDamage(t *testing.T) {
	plain := manyRecords(2000)
	z := gzipBytes(plain)
	const rec = 116

	t.Run("cut mid-stream", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(z[:len(z)/2]))
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if len(pkts) == 0 || len(pkts) == 2000 {
			t.Fatalf("read %d packets from half a stream", len(pkts))
		}
		// The error names the record after the last one returned.
		checkErr(t, err, ErrTruncated, 24+int64(len(pkts))*rec, "")
		for i, p := range pkts {
			if p.Data[0] != byte(i) || p.Offset != 24+int64(i)*rec {
				t.Fatalf("packet %d: first byte %d offset %d", i, p.Data[0], p.Offset)
			}
		}
	})
	t.Run("trailer missing", func(t *testing.T) {
		// Every record decompresses, but the CRC and size that end a gzip member are
		// gone: the stream is cut off even though it ends between records.
		r, err := NewReader(bytes.NewReader(z[:len(z)-8]))
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if len(pkts) != 2000 {
			t.Fatalf("read %d packets, want 2000", len(pkts))
		}
		checkErr(t, err, ErrTruncated, int64(len(plain)),
			"capture: offset 232024: gzip stream cut off inside record header (0 of 16 bytes)")
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		bad := bytes.Clone(z)
		bad[len(bad)-8] ^= 0xff
		r, err := NewReader(bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if len(pkts) != 2000 {
			t.Fatalf("read %d packets, want 2000", len(pkts))
		}
		var fe *FormatError
		if !errors.As(err, &fe) || !errors.Is(err, gzip.ErrChecksum) || fe.Offset != int64(len(plain)) {
			t.Fatalf("error %v, want a FormatError wrapping gzip.ErrChecksum at %d", err, len(plain))
		}
	})
	t.Run("two members", func(t *testing.T) {
		// gzip allows concatenated members; the second continues the capture.
		two := append(gzipBytes(plain[:24+rec*10]), gzipBytes(plain[24+rec*10:])...)
		r, err := NewReader(bytes.NewReader(two))
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if len(pkts) != 2000 || err != io.EOF {
			t.Fatalf("read %d packets, error %v", len(pkts), err)
		}
	})
}

// TestOneByteReads feeds the Reader through a reader that returns a byte at a time, so
// every record straddles a refill.
func TestOneByteReads(t *testing.T) {
	plain := manyRecords(50)
	for _, in := range [][]byte{plain, gzipBytes(plain)} {
		r, err := NewReader(oneByteReader{bytes.NewReader(in)})
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(r)
		if len(pkts) != 50 || err != io.EOF {
			t.Fatalf("read %d packets, error %v", len(pkts), err)
		}
		if pkts[49].Data[0] != 49 || pkts[49].Time != 49_000_000_049 {
			t.Fatalf("last packet %x at %d", pkts[49].Data[:1], pkts[49].Time)
		}
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestIOErrorIsNotFormatError: a failing disk is not a damaged capture.
func TestIOErrorIsNotFormatError(t *testing.T) {
	plain := manyRecords(3)
	boom := errors.New("boom")
	r, err := NewReader(io.MultiReader(bytes.NewReader(plain[:24+116+50]), errReader{boom}))
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(r)
	var fe *FormatError
	if len(pkts) != 1 || !errors.Is(err, boom) || errors.As(err, &fe) {
		t.Fatalf("read %d packets, error %v", len(pkts), err)
	}
	if err.Error() != "capture: reading record at offset 140: boom" {
		t.Errorf("error %q", err)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	pcap := manyRecords(5000)
	ng := newBuilder(false).shb()
	ng.idb(1, 0)
	for i := range 5000 {
		ng.epb(0, uint64(i), make([]byte, 60), 60, stropt(optComment, "drop: out_of_window"))
	}
	for name, in := range map[string][]byte{"pcap": pcap, "pcapng": ng.Bytes(), "gzip pcap": gzipBytes(pcap)} {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(2000, func() {
			p, err := r.Next()
			if err != nil || len(p.Data) == 0 || cap(p.Data) != len(p.Data) {
				t.Fatalf("%s: %v, data len %d cap %d", name, err, len(p.Data), cap(p.Data))
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per packet, want 0", name, allocs)
		}
	}
}
