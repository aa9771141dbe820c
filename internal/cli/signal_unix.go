//go:build unix

package cli

import (
	"os"
	"syscall"
)

// restartSignals stop the daemon for a restart, leaving the hooks in place for
// the next keepstate (see run).
var restartSignals = []os.Signal{syscall.SIGUSR2}
