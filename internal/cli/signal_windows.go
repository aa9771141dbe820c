package cli

import "os"

// restartSignals is empty: Windows has no SIGUSR2, so a daemon there only stops
// for good (SIGINT, SIGTERM).
var restartSignals []os.Signal
