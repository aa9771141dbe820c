package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// writeBufSize batches many packets per write to the underlying file.
const writeBufSize = 64 << 10

// errWriterClosed is returned by writes after Close.
var errWriterClosed = errors.New("capture: writer closed")

var zeros [4]byte // padding to the next multiple of 4

// NgWriter writes a pcapng capture: one little-endian section, the interfaces given to
// NewNgWriter, then one Enhanced Packet Block per packet with a nanosecond timestamp
// and an optional comment. It is not safe for concurrent use.
type NgWriter struct {
	sink
	snap  []int // effective snap length per interface
	hdr   [packetHeaderLen]byte
	opt   [4]byte
	trail [4]byte
}

// NewNgWriter writes the section header and one Interface Description Block per
// interface (link type, snap length, if_name, if_description, if_tsresol 9). Only
// Name, Description, Link and SnapLen of each Interface are used; a SnapLen of 0 or
// above MaxCaptureLen means MaxCaptureLen. The writer buffers: call Flush or Close.
func NewNgWriter(w io.Writer, ifaces []Interface) (*NgWriter, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("capture: a pcapng writer needs at least one interface")
	}
	nw := &NgWriter{sink: sink{w: bufio.NewWriterSize(w, writeBufSize)}}
	var blk block
	blk.begin(blockSectionHeader)
	blk.u32(byteOrderMagic)
	blk.u16(1) // version 1.0
	blk.u16(0)
	blk.u64(math.MaxUint64) // section length unknown (-1)
	blk.option(optUserAppl, []byte("keepstate"))
	blk.end()
	for i, ifc := range ifaces {
		if err := nw.appendInterface(&blk, ifc); err != nil {
			return nil, fmt.Errorf("capture: interface %d: %w", i, err)
		}
	}
	if _, err := nw.w.Write(blk.buf); err != nil {
		return nil, err
	}
	return nw, nil
}

// AddInterface declares one more interface after the ones given to NewNgWriter
// (pcapng allows an Interface Description Block anywhere in a section before its
// first use) and returns its index for WritePacket. Writers that learn their
// interfaces as packets arrive, such as keepstate's capture of dropped packets, need it.
func (w *NgWriter) AddInterface(ifc Interface) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	var blk block
	if err := w.appendInterface(&blk, ifc); err != nil {
		return 0, fmt.Errorf("capture: interface %d: %w", len(w.snap), err)
	}
	if _, err := w.w.Write(blk.buf); err != nil {
		w.err = err
		return 0, err
	}
	return len(w.snap) - 1, nil
}

// appendInterface appends the Interface Description Block of ifc to blk and records
// its effective snap length.
func (w *NgWriter) appendInterface(blk *block, ifc Interface) error {
	if len(ifc.Name) > math.MaxUint16 || len(ifc.Description) > math.MaxUint16 {
		return fmt.Errorf("name or description longer than %d bytes", math.MaxUint16)
	}
	snap := ifc.SnapLen
	if snap <= 0 || snap > MaxCaptureLen {
		snap = MaxCaptureLen
	}
	w.snap = append(w.snap, snap)
	blk.begin(blockInterface)
	blk.u16(uint16(ifc.Link))
	blk.u16(0) // reserved
	blk.u32(uint32(snap))
	if ifc.Name != "" {
		blk.option(optIfName, []byte(ifc.Name))
	}
	if ifc.Description != "" {
		blk.option(optIfDesc, []byte(ifc.Description))
	}
	blk.option(optTSResol, []byte{9})
	blk.end()
	return nil
}

// WritePacket appends an Enhanced Packet Block. iface indexes the interfaces given to
// NewNgWriter, then those added by AddInterface; time is Unix nanoseconds (not negative); data longer than the
// interface's snap length is cut to it; origLen below len(data) is taken as len(data);
// a non-empty comment becomes the packet's opt_comment (at most 65535 bytes). It does
// not allocate.
func (w *NgWriter) WritePacket(iface int, time int64, data []byte, origLen int, comment string) error {
	if w.err != nil {
		return w.err
	}
	if iface < 0 || iface >= len(w.snap) {
		return fmt.Errorf("capture: interface %d not declared (have %d)", iface, len(w.snap))
	}
	if time < 0 {
		return fmt.Errorf("capture: negative timestamp %d", time)
	}
	if len(comment) > math.MaxUint16 {
		return fmt.Errorf("capture: comment of %d bytes exceeds %d", len(comment), math.MaxUint16)
	}
	origLen = max(origLen, len(data))
	data = data[:min(len(data), w.snap[iface])]
	n := len(data)
	blen := packetHeaderLen + pad4(n) + 4
	if comment != "" {
		blen += 4 + pad4(len(comment)) + 4 // the comment, then opt_endofopt
	}
	h := w.hdr[:]
	le := binary.LittleEndian
	le.PutUint32(h, blockEnhancedPacket)
	le.PutUint32(h[4:], uint32(blen))
	le.PutUint32(h[8:], uint32(iface))
	le.PutUint32(h[12:], uint32(uint64(time)>>32))
	le.PutUint32(h[16:], uint32(time))
	le.PutUint32(h[20:], uint32(n))
	le.PutUint32(h[24:], uint32(min(uint64(origLen), math.MaxUint32)))
	w.w.Write(h)
	w.w.Write(data)
	w.w.Write(zeros[:pad4(n)-n])
	if comment != "" {
		le.PutUint16(w.opt[:], optComment)
		le.PutUint16(w.opt[2:], uint16(len(comment)))
		w.w.Write(w.opt[:])
		w.w.WriteString(comment)
		w.w.Write(zeros[:pad4(len(comment))-len(comment)])
		w.w.Write(zeros[:]) // opt_endofopt
	}
	le.PutUint32(w.trail[:], uint32(blen))
	if _, err := w.w.Write(w.trail[:]); err != nil {
		w.err = err // bufio.Writer keeps its first error, so checking the last write suffices
		return err
	}
	return nil
}

func pad4(n int) int { return (n + 3) &^ 3 }

// block assembles little-endian pcapng blocks for the file preamble.
type block struct {
	buf   []byte
	start int
}

func (b *block) begin(typ uint32) {
	b.start = len(b.buf)
	b.u32(typ)
	b.u32(0) // length, patched by end
}

func (b *block) u16(v uint16) { b.buf = binary.LittleEndian.AppendUint16(b.buf, v) }
func (b *block) u32(v uint32) { b.buf = binary.LittleEndian.AppendUint32(b.buf, v) }
func (b *block) u64(v uint64) { b.buf = binary.LittleEndian.AppendUint64(b.buf, v) }

func (b *block) option(code uint16, val []byte) {
	b.u16(code)
	b.u16(uint16(len(val)))
	b.buf = append(b.buf, val...)
	b.buf = append(b.buf, zeros[:pad4(len(val))-len(val)]...)
}

// end closes the option list and writes the length at both ends of the block.
func (b *block) end() {
	b.u32(0) // opt_endofopt
	blen := uint32(len(b.buf) - b.start + 4)
	b.u32(blen)
	binary.LittleEndian.PutUint32(b.buf[b.start+4:], blen)
}
