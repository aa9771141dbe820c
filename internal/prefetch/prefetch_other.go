//go:build !amd64 && !arm64

package prefetch

// line does nothing where no prefetch instruction is wired up: the hint is only
// an optimisation.
func line(addr uintptr) {}
