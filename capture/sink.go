package capture

import "bufio"

// sink is the buffered output both writers share: the first write error sticks,
// and after Close every write fails with errWriterClosed.
type sink struct {
	w      *bufio.Writer
	err    error
	closed bool
}

// Flush writes any buffered records to the underlying writer.
func (s *sink) Flush() error {
	if s.err != nil && s.err != errWriterClosed {
		return s.err
	}
	return s.w.Flush()
}

// Close flushes and makes further writes fail. It does not close the underlying writer.
func (s *sink) Close() error {
	if s.closed {
		return nil
	}
	err := s.Flush()
	s.closed = true
	if s.err == nil {
		s.err = errWriterClosed
	}
	return err
}
