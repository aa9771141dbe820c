package capture

import (
	"encoding/binary"
	"io"
	"strconv"

	"keepstate/packet"
)

// pcapng block types the Reader interprets; every other type is skipped.
const (
	blockSectionHeader   = 0x0a0d0d0a // a palindrome: readable before the byte order is known
	blockInterface       = 1
	blockPacketObsolete  = 2
	blockSimplePacket    = 3
	blockEnhancedPacket  = 6
	byteOrderMagic       = 0x1a2b3c4d
	byteOrderMagicSwap   = 0x4d3c2b1a
	minBlockLen          = 12 // type, length, trailing length
	minSectionHeaderLen  = 28
	minInterfaceLen      = 20
	minSimplePacketLen   = 16
	minEnhancedPacketLen = 32 // also the obsolete Packet Block
	packetHeaderLen      = 28 // type, length and the fixed fields of an EPB or PB
)

// Option codes used by the Reader and NgWriter.
const (
	optEndOfOpt  = 0
	optComment   = 1
	optIfName    = 2
	optIfDesc    = 3
	optTSResol   = 9
	optTSOffset  = 14
	optUserAppl  = 4 // in a section header
	defaultResol = 6 // microseconds, when an interface has no if_tsresol
)

// nextNG reads blocks until one holds a packet, taking note of sections and interfaces
// on the way.
func (r *Reader) nextNG(p *Packet) error {
	s := &r.src
	for {
		if s.w-s.r < 8 && !s.fill(8) {
			return r.shortRead(8, "block header")
		}
		off := s.offset()
		typ := r.u32(s.buf[s.r:])
		blen := r.u32(s.buf[s.r+4:])
		var err error
		switch typ {
		case blockSectionHeader:
			err = r.readSectionHeader()
		case blockInterface:
			var b []byte
			if b, err = r.loadBlock(off, blen, minInterfaceLen, "interface description block"); err == nil {
				err = r.addInterface(off, b)
			}
		case blockEnhancedPacket, blockPacketObsolete:
			b, err := r.loadBlock(off, blen, minEnhancedPacketLen, "packet block")
			if err != nil {
				return err
			}
			id := r.u32(b[8:])
			if typ == blockPacketObsolete {
				id = uint32(r.u16(b[8:]))
			}
			ts := uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:]))
			return r.packetFromBlock(p, off, b, id, ts, r.u32(b[20:]), r.u32(b[24:]))
		case blockSimplePacket:
			b, err := r.loadBlock(off, blen, minSimplePacketLen, "simple packet block")
			if err != nil {
				return err
			}
			return r.simplePacket(p, off, b)
		default:
			err = r.skipBlock(off, blen)
		}
		if err != nil {
			return err
		}
	}
}

// readSectionHeader reads a Section Header Block at the current offset: it sets the
// byte order for the section and starts a new numbering of interfaces.
func (r *Reader) readSectionHeader() error {
	s := &r.src
	off := s.offset()
	if !s.fill(12) {
		return r.shortRead(12, "section header block")
	}
	b := s.buf[s.r:]
	switch binary.LittleEndian.Uint32(b[8:]) {
	case byteOrderMagic:
		r.bigEndian = false
	case byteOrderMagicSwap:
		r.bigEndian = true
	default:
		return formatErr(off, ErrCorrupt, "section header block has byte-order magic %#08x",
			binary.BigEndian.Uint32(b[8:]))
	}
	blen := r.u32(b[4:])
	if err := checkBlockLen(off, blen, minSectionHeaderLen, "section header block"); err != nil {
		return err
	}
	if !s.fill(16) {
		return r.shortRead(16, "section header block")
	}
	b = s.buf[s.r:]
	if major, minor := r.u16(b[12:]), r.u16(b[14:]); major != 1 {
		return formatErr(off, ErrUnsupported, "pcapng version %d.%d", major, minor)
	}
	// Nothing in the section header's options matters for reading packets.
	if err := r.skipBlock(off, blen); err != nil {
		return err
	}
	r.section++
	r.sectionBase = len(r.ifaces)
	return nil
}

func checkBlockLen(off int64, blen uint32, minLen int, what string) error {
	if blen%4 != 0 {
		return formatErr(off, ErrCorrupt, "%s length %d is not a multiple of 4", what, blen)
	}
	if blen < uint32(minLen) {
		return formatErr(off, ErrCorrupt, "%s length %d is less than the minimum %d", what, blen, minLen)
	}
	return nil
}

// loadBlock buffers the whole block at off (the current offset), checks its trailing
// length and consumes it. The returned slice, header and trailer included, stays valid
// until the next fill.
func (r *Reader) loadBlock(off int64, blen uint32, minLen int, what string) ([]byte, error) {
	if err := checkBlockLen(off, blen, minLen, what); err != nil {
		return nil, err
	}
	if blen > MaxBlockLen {
		return nil, formatErr(off, ErrTooLarge, "%s length %d exceeds the limit of %d", what, blen, MaxBlockLen)
	}
	s := &r.src
	n := int(blen)
	if s.w-s.r < n && !s.fill(n) {
		return nil, r.shortRecord(what, 8, n-8)
	}
	b := s.buf[s.r : s.r+n : s.r+n]
	if trailer := r.u32(b[n-4:]); trailer != blen {
		return nil, formatErr(off, ErrCorrupt, "%s trailing length %d differs from its length %d", what, trailer, blen)
	}
	s.r += n
	return b, nil
}

// skipBlock consumes a block the Reader does not need without buffering its body,
// still checking that the trailing length matches.
func (r *Reader) skipBlock(off int64, blen uint32) error {
	if err := checkBlockLen(off, blen, minBlockLen, "block"); err != nil {
		return err
	}
	s := &r.src
	if !s.skip(int64(blen)-4) || !s.fill(4) {
		if s.err == io.EOF || s.err == io.ErrUnexpectedEOF {
			left := s.offset() + int64(s.buffered()) - off - 8
			return formatErr(off, ErrTruncated, "truncated block: header says %d bytes, %d left", blen-8, left)
		}
		return r.shortRead(4, "block")
	}
	if trailer := r.u32(s.buf[s.r:]); trailer != blen {
		return formatErr(off, ErrCorrupt, "block trailing length %d differs from its length %d", trailer, blen)
	}
	s.r += 4
	return nil
}

// addInterface records an Interface Description Block: link type, snap length, and
// the options that matter (name, description, timestamp resolution and offset).
func (r *Reader) addInterface(off int64, b []byte) error {
	if len(r.ifaces) >= MaxInterfaces {
		return formatErr(off, ErrTooLarge, "more than %d interface descriptions", MaxInterfaces)
	}
	ifc := Interface{
		Link:    packet.LinkType(r.u16(b[8:])),
		SnapLen: int(r.u32(b[12:])),
		TSResol: defaultResol,
		Section: r.section,
	}
	opts := options{b: b[16 : len(b)-4], r: r}
	for opts.next() {
		switch opts.code {
		case optIfName:
			ifc.Name = string(trimNUL(opts.val))
		case optIfDesc:
			ifc.Description = string(trimNUL(opts.val))
		case optTSResol:
			if len(opts.val) >= 1 {
				ifc.TSResol = opts.val[0]
			}
		case optTSOffset:
			if len(opts.val) >= 8 {
				ifc.TSOffset = int64(r.u64(opts.val))
			}
		}
	}
	if opts.bad {
		return formatErr(off, ErrCorrupt, "interface description block: %s", opts.why())
	}
	r.ifaces = append(r.ifaces, ifc)
	r.conv = append(r.conv, newTSConv(ifc.TSResol, ifc.TSOffset))
	return nil
}

// packetFromBlock finishes an Enhanced Packet Block or obsolete Packet Block: both put
// the data at offset 28 and options after it.
func (r *Reader) packetFromBlock(p *Packet, off int64, b []byte, id uint32, ts uint64, capLen, origLen uint32) error {
	if uint64(id) >= uint64(len(r.ifaces)-r.sectionBase) {
		return formatErr(off, ErrCorrupt, "packet on interface %d, but the section describes %d",
			id, len(r.ifaces)-r.sectionBase)
	}
	if capLen > MaxCaptureLen {
		return formatErr(off, ErrTooLarge, "packet block says %d captured bytes, more than the limit of %d",
			capLen, MaxCaptureLen)
	}
	n := int(capLen)
	optStart := packetHeaderLen + (n+3)&^3
	if optStart > len(b)-4 {
		return formatErr(off, ErrCorrupt, "packet block says %d captured bytes, block of %d has room for %d",
			capLen, len(b), len(b)-4-packetHeaderLen)
	}
	var comment []byte
	if optStart < len(b)-4 {
		opts := options{b: b[optStart : len(b)-4], r: r}
		for opts.next() {
			if opts.code == optComment && comment == nil {
				comment = opts.val
			}
		}
		if opts.bad {
			return formatErr(off, ErrCorrupt, "packet block: %s", opts.why())
		}
	}
	idx := r.sectionBase + int(id)
	t := r.conv[idx].nanos(ts)
	r.lastTime = t
	*p = Packet{
		Data:       b[packetHeaderLen : packetHeaderLen+n : packetHeaderLen+n],
		Comment:    comment,
		Time:       t,
		CaptureLen: n,
		OrigLen:    int(origLen),
		Link:       r.ifaces[idx].Link,
		Iface:      idx,
		Offset:     off,
	}
	return nil
}

// simplePacket reads a Simple Packet Block: interface 0 of the section, no timestamp
// (the previous packet's is used, so replay time does not jump back to 1970), and a
// captured length implied by the snap length and the block size.
func (r *Reader) simplePacket(p *Packet, off int64, b []byte) error {
	if len(r.ifaces) == r.sectionBase {
		return formatErr(off, ErrCorrupt, "simple packet block before any interface description")
	}
	ifc := &r.ifaces[r.sectionBase]
	origLen := r.u32(b[8:])
	n := min(uint64(origLen), uint64(len(b)-minSimplePacketLen))
	if ifc.SnapLen > 0 {
		n = min(n, uint64(ifc.SnapLen))
	}
	if n > MaxCaptureLen {
		return formatErr(off, ErrTooLarge, "simple packet block holds %d bytes, more than the limit of %d",
			n, MaxCaptureLen)
	}
	*p = Packet{
		Data:       b[12 : 12+n : 12+n],
		Time:       r.lastTime,
		CaptureLen: int(n),
		OrigLen:    int(origLen),
		Link:       ifc.Link,
		Iface:      r.sectionBase,
		Offset:     off,
	}
	return nil
}

// options walks a pcapng option list: code, length, value padded to 4 bytes, up to
// opt_endofopt or the end of the block.
type options struct {
	b    []byte
	r    *Reader
	code uint16
	val  []byte
	bad  bool
	pos  int
}

func (o *options) next() bool {
	if len(o.b)-o.pos < 4 || o.bad {
		return false
	}
	code, n := o.r.u16(o.b[o.pos:]), int(o.r.u16(o.b[o.pos+2:]))
	if code == optEndOfOpt {
		return false
	}
	end := o.pos + 4 + n
	if end > len(o.b) {
		o.bad = true
		o.code = code
		o.val = nil
		return false
	}
	o.code, o.val = code, o.b[o.pos+4:end:end]
	o.pos = min(len(o.b), o.pos+4+(n+3)&^3)
	return true
}

func (o *options) why() string {
	return "option " + strconv.Itoa(int(o.code)) + " runs past the end of the block"
}

// trimNUL drops the terminating NULs some writers include in string options.
func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
