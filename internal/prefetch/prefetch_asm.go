//go:build amd64 || arm64

package prefetch

// line is PREFETCHT0 on amd64 and PRFM PLDL1KEEP on arm64.
//
//go:noescape
func line(addr uintptr)
