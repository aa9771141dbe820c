package capture

import (
	"encoding/binary"

	"keepstate/packet"
)

// Classic pcap magic numbers, as read in the file's own byte order.
const (
	magicMicros   = 0xa1b2c3d4 // timestamps in microseconds
	magicNanos    = 0xa1b23c4d // timestamps in nanoseconds
	magicModified = 0xa1b2cd34 // Alexey Kuznetsov's patched libpcap: 8 more bytes per record
)

const pcapFileHeaderLen = 24

func (r *Reader) readPcapHeader() error {
	s := &r.src
	if !s.fill(pcapFileHeaderLen) {
		return r.shortRead(pcapFileHeaderLen, "pcap file header")
	}
	h := s.buf[s.r : s.r+pcapFileHeaderLen]
	magic := binary.LittleEndian.Uint32(h)
	if !isPcapMagic(magic) {
		magic = binary.BigEndian.Uint32(h)
		if !isPcapMagic(magic) {
			return formatErr(0, ErrCorrupt, "unknown magic %#08x: not a pcap or pcapng capture",
				binary.BigEndian.Uint32(h))
		}
		r.bigEndian = true
	}
	r.hdrLen, r.fracNanos = 16, 1000
	switch magic {
	case magicNanos:
		r.fracNanos = 1
	case magicModified:
		r.hdrLen = 24
	}
	if major := r.u16(h[4:]); major != 2 {
		return formatErr(0, ErrUnsupported, "pcap version %d.%d", major, r.u16(h[6:]))
	}
	r.snapLen = int(r.u32(h[16:]))
	// The top bits of the link type field carry FCS information; LINKTYPE_ values
	// themselves fit in 16 bits.
	r.link = packet.LinkType(r.u32(h[20:]) & 0xffff)
	s.r += pcapFileHeaderLen
	return nil
}

func isPcapMagic(m uint32) bool {
	return m == magicMicros || m == magicNanos || m == magicModified
}

// nextPcap reads one record: a 16-byte header (seconds, fraction, captured length,
// original length), 8 more bytes in the modified format, then the data.
func (r *Reader) nextPcap(p *Packet) error {
	s := &r.src
	hl := r.hdrLen
	if s.w-s.r < hl && !s.fill(hl) {
		return r.shortRead(hl, "record header")
	}
	h := s.buf[s.r : s.r+hl]
	sec, frac := r.u32(h), r.u32(h[4:])
	capLen, origLen := r.u32(h[8:]), r.u32(h[12:])
	if capLen > MaxCaptureLen {
		return formatErr(s.offset(), ErrTooLarge,
			"record header says %d captured bytes, more than the limit of %d (snaplen %d)",
			capLen, MaxCaptureLen, r.snapLen)
	}
	n := int(capLen)
	if s.w-s.r < hl+n && !s.fill(hl+n) {
		return r.shortRecord("record", hl, n)
	}
	off := s.offset()
	start := s.r + hl
	s.r = start + n
	*p = Packet{
		Data:       s.buf[start:s.r:s.r],
		Time:       int64(sec)*1e9 + int64(frac)*r.fracNanos,
		CaptureLen: n,
		OrigLen:    int(origLen),
		Link:       r.link,
		Iface:      -1,
		Offset:     off,
	}
	return nil
}
