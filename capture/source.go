package capture

import (
	"bytes"
	"compress/gzip"
	"io"
)

// defaultBufSize is how much the source reads at once: large enough that a read
// syscall is amortised over thousands of packets, small enough to be irrelevant next
// to the rest of a replay.
const defaultBufSize = 1 << 20

// source is a growable read buffer that knows the stream offset of every byte it holds.
// Records are handed out as slices of buf, so a slice stays valid only until the next
// fill, which may move or overwrite the bytes.
type source struct {
	rd   io.Reader
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	base int64 // stream offset of buf[0]
	err  error // first error from rd; io.EOF at a clean end
}

func newSource(rd io.Reader) source {
	size := defaultBufSize
	// An in-memory input smaller than the default needs no more buffer than itself;
	// this keeps opening a tiny capture (tests, fuzzing) cheap.
	if l, ok := rd.(interface{ Len() int }); ok && l.Len() < size {
		size = max(l.Len(), 4096)
	}
	return source{rd: rd, buf: make([]byte, size)}
}

// offset is the stream offset of the next unread byte.
func (s *source) offset() int64 { return s.base + int64(s.r) }

// buffered is the number of bytes available without reading.
func (s *source) buffered() int { return s.w - s.r }

// fill makes at least n bytes available at buf[r:], growing the buffer if a record is
// larger than it (callers bound n). It reports false when the input ends or fails
// first; s.err then says why and the bytes that did arrive stay available.
func (s *source) fill(n int) bool {
	if s.w-s.r >= n {
		return true
	}
	if s.err != nil {
		return false
	}
	if s.r+n > len(s.buf) {
		if n > len(s.buf) {
			grown := make([]byte, max(n, 2*len(s.buf)))
			copy(grown, s.buf[s.r:s.w])
			s.buf = grown
		} else {
			copy(s.buf, s.buf[s.r:s.w])
		}
		s.base += int64(s.r)
		s.w -= s.r
		s.r = 0
	}
	for empty := 0; s.w-s.r < n; {
		m, err := s.rd.Read(s.buf[s.w:])
		s.w += m
		if err != nil {
			s.err = err
			return s.w-s.r >= n
		}
		if m == 0 {
			if empty++; empty > 100 {
				s.err = io.ErrNoProgress
				return false
			}
		}
	}
	return true
}

// skip discards n bytes, reading through the input without holding them, so that a
// huge block the Reader does not need costs no memory. It reports false if the input
// ends first, leaving the source at its end.
func (s *source) skip(n int64) bool {
	if int64(s.w-s.r) >= n {
		s.r += int(n)
		return true
	}
	n -= int64(s.w - s.r)
	s.base += int64(s.w)
	s.r, s.w = 0, 0
	for n > 0 {
		if s.err != nil {
			return false
		}
		m, err := s.rd.Read(s.buf[:min(int64(len(s.buf)), n)])
		s.base += int64(m)
		n -= int64(m)
		if err != nil {
			s.err = err
		}
	}
	return true
}

// startGzip replaces the source's input by a decompressor of it. The bytes already
// buffered are the start of the compressed stream, so they are fed to the decompressor
// first; offsets then count decompressed bytes from zero.
func (s *source) startGzip() error {
	head := bytes.Clone(s.buf[s.r:s.w])
	compressed := io.MultiReader(bytes.NewReader(head), s.rd)
	if s.err != nil {
		compressed = io.MultiReader(bytes.NewReader(head), errReader{s.err})
	}
	zr, err := gzip.NewReader(compressed)
	if err != nil {
		return err
	}
	s.rd = zr
	s.r, s.w, s.base, s.err = 0, 0, 0, nil
	if len(s.buf) < defaultBufSize {
		// The buffer was sized for the compressed input; the decompressed one is larger.
		s.buf = make([]byte, defaultBufSize)
	}
	return nil
}

// errReader is an input that has already ended (or failed) the way err says.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
