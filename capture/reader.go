package capture

import (
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"keepstate/packet"
)

// MaxCaptureLen is the largest captured packet the Reader accepts (libpcap's own
// ceiling). A record claiming more is reported as ErrTooLarge instead of being
// allocated, so a corrupt length cannot exhaust memory.
const MaxCaptureLen = 256 << 10

// MaxBlockLen is the largest pcapng block the Reader holds in memory: packet blocks and
// interface descriptions. Larger blocks of other types are skipped without buffering.
const MaxBlockLen = 1 << 20

// MaxInterfaces bounds the pcapng interfaces a Reader remembers (across all sections),
// so that a file of nothing but interface descriptions cannot exhaust memory.
const MaxInterfaces = 1 << 16

// Format is the container format of a capture.
type Format uint8

const (
	FormatPcap   Format = iota + 1 // classic libpcap, one link type per file
	FormatPcapNG                   // pcapng, sections of interfaces and blocks
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Packet is one captured packet. Data and Comment alias the Reader's buffer and are
// valid only until the next call to Next; copy them to keep them.
type Packet struct {
	Data       []byte // the captured bytes, CaptureLen long
	Comment    []byte // the first opt_comment of a pcapng packet block, else nil
	Time       int64  // Unix nanoseconds
	CaptureLen int
	OrigLen    int // length on the wire; may exceed CaptureLen when the snaplen cut it
	Link       packet.LinkType
	// Iface indexes Reader.Interfaces() for pcapng (equal to the pcapng interface id
	// in a single-section file; later sections number on after earlier ones); -1 for pcap.
	Iface int
	// Offset is the byte offset of the record (pcap record header or pcapng block) in
	// the decompressed stream.
	Offset int64
}

// Interface describes a capture interface, as read from a pcapng Interface Description
// Block or as given to NewNgWriter.
type Interface struct {
	Name        string // if_name
	Description string // if_description
	Link        packet.LinkType
	SnapLen     int
	// TSResol is the raw if_tsresol byte: 10^-n seconds, or 2^-n seconds when the high
	// bit is set. 6 (microseconds) when absent. NgWriter always writes 9.
	TSResol uint8
	// TSOffset is if_tsoffset, seconds added to every timestamp of the interface.
	TSOffset int64
	// Section is the index of the pcapng section the interface belongs to.
	Section int
}

// Reader streams packets from a pcap or pcapng capture, gzip-compressed or not.
type Reader struct {
	src        source
	closer     io.Closer
	format     Format
	compressed bool
	err        error // sticky: once Next fails it keeps failing the same way
	bigEndian  bool

	// pcap
	hdrLen    int   // record header: 16, or 24 for the modified (Kuznetsov) format
	fracNanos int64 // nanoseconds per unit of the timestamp fraction: 1000 or 1
	link      packet.LinkType
	snapLen   int

	// pcapng
	ifaces      []Interface
	conv        []tsConv // parallel to ifaces
	section     int      // index of the current section; -1 before the first
	sectionBase int      // index in ifaces of the current section's interface 0
	lastTime    int64    // timestamp of the last packet, for Simple Packet Blocks
}

// Open opens a capture file. Close the Reader to close the file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads the file header of r and returns a Reader positioned at the first
// packet. The format is detected from the magic number; gzip input is decompressed.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{src: newSource(r), section: -1}
	s := &rd.src
	if !s.fill(4) {
		if s.buffered() == 0 && s.err == io.EOF {
			return nil, formatErr(0, ErrTruncated, "empty input")
		}
		return nil, rd.shortRead(4, "file header")
	}
	if s.buf[s.r] == 0x1f && s.buf[s.r+1] == 0x8b {
		if err := s.startGzip(); err != nil {
			kind := ErrCorrupt
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				kind = ErrTruncated
			}
			return nil, &FormatError{Offset: 0, Msg: "gzip header: " + err.Error(), Err: kind}
		}
		rd.compressed = true
		if !s.fill(4) {
			return nil, rd.shortRead(4, "file header")
		}
	}
	var err error
	if magic := s.buf[s.r : s.r+4]; string(magic) == "\x0a\x0d\x0d\x0a" {
		rd.format = FormatPcapNG
		// The first block must be a section header; reading it sets the byte order.
		err = rd.readSectionHeader()
	} else {
		rd.format = FormatPcap
		err = rd.readPcapHeader()
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// Next returns the next packet, io.EOF at a clean end of input, or an error (a
// *FormatError for damaged input) after the last good packet.
func (r *Reader) Next() (p Packet, err error) {
	if r.err == nil {
		if r.format == FormatPcap {
			err = r.nextPcap(&p)
		} else {
			err = r.nextNG(&p)
		}
		if err == nil {
			return p, nil
		}
		r.err = err
	}
	return Packet{}, r.err
}

// Format reports whether the capture is pcap or pcapng.
func (r *Reader) Format() Format { return r.format }

// Compressed reports whether the capture was gzip-compressed.
func (r *Reader) Compressed() bool { return r.compressed }

// LinkType is the link type of a pcap file, or of the first pcapng interface known so
// far (0 if none).
func (r *Reader) LinkType() packet.LinkType {
	if r.format == FormatPcapNG && len(r.ifaces) > 0 {
		return r.ifaces[0].Link
	}
	return r.link
}

// SnapLen is the snapshot length in the pcap file header, or of the first pcapng
// interface known so far.
func (r *Reader) SnapLen() int {
	if r.format == FormatPcapNG && len(r.ifaces) > 0 {
		return r.ifaces[0].SnapLen
	}
	return r.snapLen
}

// Interfaces returns the pcapng interfaces described so far, in file order across all
// sections (Packet.Iface indexes it); nil for pcap. Interfaces may be described
// mid-file, so the list can grow as Next proceeds. The caller must not modify it.
func (r *Reader) Interfaces() []Interface { return r.ifaces[:len(r.ifaces):len(r.ifaces)] }

// Close closes the file opened by Open; for a Reader from NewReader it does nothing.
func (r *Reader) Close() error {
	if r.err == nil {
		r.err = errors.New("capture: reader closed")
	}
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

func (r *Reader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) u64(b []byte) uint64 {
	if r.bigEndian {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// shortRead explains why fill(need) failed for the record starting at the current
// offset: a clean end (io.EOF, only when nothing of the record arrived), truncation,
// a damaged gzip stream, or an I/O error.
func (r *Reader) shortRead(need int, what string) error {
	s := &r.src
	off, have := s.offset(), s.buffered()
	switch {
	case s.err == io.EOF && have == 0:
		return io.EOF
	case s.err == io.EOF:
		return formatErr(off, ErrTruncated, "truncated %s: needs %d bytes, %d left", what, need, have)
	case errors.Is(s.err, io.ErrUnexpectedEOF):
		if r.compressed {
			return formatErr(off, ErrTruncated, "gzip stream cut off inside %s (%d of %d bytes)", what, have, need)
		}
		return formatErr(off, ErrTruncated, "truncated %s: needs %d bytes, %d left", what, need, have)
	case r.compressed && isGzipDamage(s.err):
		return &FormatError{Offset: off, Err: s.err,
			Msg: fmt.Sprintf("%v (in %s, at decompressed offset %d)", s.err, what, off+int64(have))}
	}
	return fmt.Errorf("capture: reading %s at offset %d: %w", what, off, s.err)
}

func isGzipDamage(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt)
}

// shortRecord is shortRead for a record whose header (hdr bytes, already buffered)
// announced body more bytes that did not all arrive.
func (r *Reader) shortRecord(what string, hdr, body int) error {
	err := r.shortRead(hdr+body, what)
	if fe, ok := err.(*FormatError); ok && fe.Err == ErrTruncated && r.src.err == io.EOF {
		fe.Msg = fmt.Sprintf("truncated %s: header says %d bytes, %d left", what, body, r.src.buffered()-hdr)
	}
	return err
}
