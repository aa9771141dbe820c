package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"keepstate/packet"
)

// PcapWriter writes a classic little-endian pcap file (version 2.4) with microsecond
// or nanosecond timestamps. It is not safe for concurrent use.
type PcapWriter struct {
	sink
	snap  int
	nanos bool
	hdr   [16]byte
}

// NewPcapWriter writes the file header. A snaplen of 0 or above MaxCaptureLen means
// MaxCaptureLen. The writer buffers: call Flush or Close.
func NewPcapWriter(w io.Writer, link packet.LinkType, snaplen int, nanos bool) (*PcapWriter, error) {
	if snaplen <= 0 || snaplen > MaxCaptureLen {
		snaplen = MaxCaptureLen
	}
	pw := &PcapWriter{sink: sink{w: bufio.NewWriterSize(w, writeBufSize)}, snap: snaplen, nanos: nanos}
	var h [pcapFileHeaderLen]byte
	le := binary.LittleEndian
	magic := uint32(magicMicros)
	if nanos {
		magic = magicNanos
	}
	le.PutUint32(h[0:], magic)
	le.PutUint16(h[4:], 2)
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[16:], uint32(snaplen))
	le.PutUint32(h[20:], uint32(link))
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, err
	}
	return pw, nil
}

// WritePacket appends a record. time is Unix nanoseconds and must fit the format's
// unsigned 32-bit seconds; data longer than the snap length is cut to it; origLen
// below len(data) is taken as len(data). It does not allocate.
func (w *PcapWriter) WritePacket(time int64, data []byte, origLen int) error {
	if w.err != nil {
		return w.err
	}
	sec, frac := time/1e9, time%1e9
	if time < 0 || sec > math.MaxUint32 {
		return fmt.Errorf("capture: timestamp %d does not fit a pcap record", time)
	}
	if !w.nanos {
		frac /= 1000
	}
	origLen = max(origLen, len(data))
	data = data[:min(len(data), w.snap)]
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:], uint32(sec))
	le.PutUint32(w.hdr[4:], uint32(frac))
	le.PutUint32(w.hdr[8:], uint32(len(data)))
	le.PutUint32(w.hdr[12:], uint32(min(uint64(origLen), math.MaxUint32)))
	w.w.Write(w.hdr[:])
	if _, err := w.w.Write(data); err != nil {
		w.err = err
		return err
	}
	return nil
}
