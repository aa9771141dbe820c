package capture

import "math/bits"

// tsConv turns a pcapng timestamp (a count of units since the epoch, the unit set by
// if_tsresol) into Unix nanoseconds. The factors are worked out once per interface so
// that the per-packet cost is one multiplication or division.
type tsConv struct {
	kind   tsKind
	factor uint64 // multiplier (tsMul) or divisor (tsDiv)
	shift  uint   // tsBinary: the unit is 2^-shift seconds
	offset int64  // if_tsoffset, in nanoseconds
}

type tsKind uint8

const (
	tsMul    tsKind = iota // unit of 10^-n seconds, n <= 9: multiply up to nanoseconds
	tsDiv                  // unit of 10^-n seconds, 9 < n <= 28: divide down
	tsZero                 // unit too small to matter: every timestamp is the epoch
	tsBinary               // unit of 2^-n seconds
)

// newTSConv builds the conversion for an if_tsresol byte and if_tsoffset (seconds).
// Default pcapng resolution is microseconds: pass 6 when the option is absent.
func newTSConv(tsresol uint8, offsetSec int64) tsConv {
	c := tsConv{offset: offsetSec * 1e9}
	n := uint(tsresol & 0x7f)
	switch {
	case tsresol&0x80 != 0:
		c.kind, c.shift = tsBinary, n
	case n <= 9:
		c.kind, c.factor = tsMul, pow10(9-n)
	case n-9 <= 19: // 10^19 is the largest power of ten in a uint64
		c.kind, c.factor = tsDiv, pow10(n-9)
	default:
		c.kind = tsZero
	}
	return c
}

func pow10(n uint) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

func (c *tsConv) nanos(ts uint64) int64 {
	var ns uint64
	switch c.kind {
	case tsMul:
		ns = ts * c.factor
	case tsDiv:
		ns = ts / c.factor
	case tsBinary:
		// ts * 1e9 / 2^shift, in 128 bits so that fine binary units do not overflow.
		hi, lo := bits.Mul64(ts, 1e9)
		switch {
		case c.shift == 0:
			ns = lo
		case c.shift < 64:
			ns = lo>>c.shift | hi<<(64-c.shift)
		default:
			ns = hi >> (c.shift - 64)
		}
	}
	return int64(ns) + c.offset
}
