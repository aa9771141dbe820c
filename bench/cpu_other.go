//go:build !linux

package bench

// threadCPU is not available here: figures fall back to wall time.
func threadCPU() int64 { return 0 }
