//go:build !linux

package packet

// threadCPUTime is unavailable here; benchmarks then report wall time only.
func threadCPUTime() int64 { return -1 }
