package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"keepstate/daemon"
)

// adminTimeout bounds one exchange with the running daemon; an import of a large
// bundle is the slowest.
const adminTimeout = 60 * time.Second

// socketFlag adds --socket to a command that talks to the running daemon.
func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", daemon.DefaultSocket, "admin socket of the running keepstate")
}

// callDaemon sends req and decodes the result. On failure it prints why and
// returns the exit code: exitUsage for a configuration the daemon refused
// (every problem printed as file:line), exitFail otherwise.
func callDaemon(e *env, socket string, req *daemon.Request, result any) int {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	err := daemon.Call(ctx, socket, req, result)
	if err == nil {
		return exitOK
	}
	var remote *daemon.RemoteError
	switch {
	case errors.As(err, &remote) && len(remote.Errors) > 0:
		for _, p := range remote.Errors {
			fmt.Fprintln(e.stderr, p)
		}
		fmt.Fprintf(e.stderr, "%d error(s)\n", len(remote.Errors))
		e.errorf("%s", remote.Msg)
		return exitUsage
	case errors.As(err, &remote):
		e.errorf("%s", remote.Msg)
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		e.errorf("keepstate is not running (nothing answers on %s)", socket)
	default:
		e.errorf("%v", err)
	}
	return exitFail
}

// daemonRunning reports whether something listens on the socket at path; used to
// decide whether `config import/export` talk to the daemon or work on files.
func daemonRunning(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// flagGiven reports whether the named flag was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}
