//go:build !linux

package cli

func runBenchLive(e *env, _ []string) int {
	e.errorf("bench live: needs Linux (network namespaces, NFQUEUE)")
	return exitFail
}
