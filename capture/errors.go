package capture

import (
	"errors"
	"fmt"
)

// Kinds of damage a FormatError wraps; test them with errors.Is.
var (
	// ErrTruncated means the input ended inside a header or a record, or a gzip
	// stream was cut off.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge means a length field exceeds what the Reader accepts (MaxCaptureLen
	// for packet data, MaxBlockLen for pcapng blocks it must hold in memory).
	ErrTooLarge = errors.New("too large")
	// ErrCorrupt means a field holds a value the format forbids: an unknown magic, a
	// pcapng block length that is not a multiple of 4 or disagrees with its trailer, an
	// interface id that was never described, an option running past its block.
	ErrCorrupt = errors.New("corrupt")
	// ErrUnsupported means a well-formed input the Reader does not handle, such as a
	// pcapng section of a major version other than 1.
	ErrUnsupported = errors.New("unsupported")
)

// FormatError reports where and how a capture is damaged. Every record before Offset
// has already been returned by Next.
type FormatError struct {
	// Offset is the byte offset, in the decompressed stream, of the record or header
	// that could not be read.
	Offset int64
	// Msg says what was wrong, e.g. "truncated record: header says 1514 bytes, 200 left".
	Msg string
	// Err is one of ErrTruncated, ErrTooLarge, ErrCorrupt, ErrUnsupported, or the
	// decompressor's own error for a damaged gzip stream.
	Err error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("capture: offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns the kind of damage.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(off int64, kind error, format string, args ...any) *FormatError {
	return &FormatError{Offset: off, Msg: fmt.Sprintf(format, args...), Err: kind}
}
