package prefetch

import (
	"testing"
	"unsafe"
)

// A prefetch is a hint: any address, even one that is not mapped, must be safe.
func TestLineAnyAddress(t *testing.T) {
	var x [128]byte
	Line(unsafe.Pointer(&x[0]))
	Line(unsafe.Pointer(&x[127]))
	line(0)
	line(^uintptr(0))
	line(0xdead0000)
}

func BenchmarkLine(b *testing.B) {
	buf := make([]byte, 1<<20)
	for i := 0; b.Loop(); i++ {
		Line(unsafe.Pointer(&buf[(i*4099)&(len(buf)-1)]))
	}
}
