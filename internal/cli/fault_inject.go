//go:build faultinject

package cli

import (
	"os"
	"os/signal"
	"syscall"

	"keepstate/daemon"
)

// A test build (go build -tags faultinject) of `keepstate run` panics on SIGUSR1,
// as a bug would: in a goroutine of its own, so that nothing of the daemon's stop
// runs, and Go exits with status 2. No other build has this.
func init() {
	startFaults = func(e *env, _ *daemon.Daemon) {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		go func() {
			<-c
			e.errorf("fault injection: SIGUSR1, panicking")
			panic("keepstate: fault injection: SIGUSR1 in a faultinject build")
		}()
	}
}
